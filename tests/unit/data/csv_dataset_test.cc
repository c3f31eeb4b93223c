// CSV datasets: a header, a label column found by name wherever it stands,
// plain or GZIP, several files read in order, CRLF line ends and a last line
// without its newline; every malformed line names the file, line and column.
#include "runtime/data/csv_dataset.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/test_files.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteGzFile;
using testing::WritePlainFile;

CsvSpec Spec() {
  CsvSpec spec;
  spec.num_classes = 3;
  spec.divisor = 2.0f;
  return spec;
}

TEST(CsvDatasetTest, ReadsEveryFileInOrderWithTheLabelAnywhere) {
  TempDir dir;
  WritePlainFile(dir.File("a.csv"), "x, label ,y\r\n1,2,3\r\n\n4.5,0,-6e1\r\n");
  WriteGzFile(dir.File("b.csv.gz"), "x,label,y\n7,1,8");
  auto data = LoadCsvDataset({dir.File("a.csv"), dir.File("b.csv.gz")}, Spec(), "csv/train");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 3);
  ASSERT_EQ(data->inputs.shape().row_elements(), 2);
  const float* x = data->inputs.data<float>();
  EXPECT_THAT(std::vector<float>(x, x + 6),
              ::testing::ElementsAre(0.5f, 1.5f, 2.25f, -30.0f, 3.5f, 4.0f));
  const int32_t* y = data->labels.data<int32_t>();
  EXPECT_THAT(std::vector<int32_t>(y, y + 3), ::testing::ElementsAre(2, 0, 1));
}

std::string ErrorOf(const std::string& text, CsvSpec spec = Spec()) {
  TempDir dir;
  WritePlainFile(dir.File("d.csv"), text);
  auto data = LoadCsvDataset({dir.File("d.csv")}, spec, "csv/train");
  EXPECT_FALSE(data.ok());
  return std::string(data.status().message());
}

TEST(CsvDatasetTest, EveryMalformedLineNamesFileLineAndColumn) {
  EXPECT_THAT(ErrorOf("x,label\n1,2\n3\n"),
              HasSubstr("d.csv: line 3: 1 fields, the header names 2"));
  EXPECT_THAT(ErrorOf("x,label\n1,2,5\n"),
              HasSubstr("d.csv: line 2: 3 fields, the header names 2"));
  EXPECT_THAT(ErrorOf("x,label\nabc,1\n"), HasSubstr("line 2: column 'x': 'abc' is not a number"));
  EXPECT_THAT(ErrorOf("x,label\n\"1\",1\n"), HasSubstr("(quoted fields are not read)"));
  EXPECT_THAT(ErrorOf("x,label\n1,3\n"), HasSubstr("line 2: label '3' is not a class in [0, 3)"));
  EXPECT_THAT(ErrorOf("x,label\n1,1.5\n"), HasSubstr("label '1.5' is not a class"));
  EXPECT_THAT(ErrorOf("x,y\n1,1\n"), HasSubstr("line 1: no column 'label' in the header ('x,y')"));
  EXPECT_THAT(ErrorOf("label\n1\n"), HasSubstr("no input column beside the label"));
  EXPECT_THAT(ErrorOf("x,label\n"), HasSubstr("hold no example"));
  CsvSpec one_class = Spec();
  one_class.num_classes = 1;
  EXPECT_THAT(ErrorOf("x,label\n1,0\n", one_class), HasSubstr("must be at least 2"));
}

TEST(CsvDatasetTest, FilesWithDifferentHeadersAreRefused) {
  TempDir dir;
  WritePlainFile(dir.File("a.csv"), "x,label\n1,1\n");
  WritePlainFile(dir.File("b.csv"), "z,label\n1,1\n");
  auto data = LoadCsvDataset({dir.File("a.csv"), dir.File("b.csv")}, Spec(), "csv/train");
  EXPECT_THAT(data.status().message(), HasSubstr("b.csv: line 1: the header differs"));
}

}  // namespace
}  // namespace meshtrain

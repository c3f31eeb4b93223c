// .npy files as NumPy writes them (format 1 and 2 headers, C order), read
// memory-mapped into a Dataset; each malformation names the file and what
// to do.
#include "runtime/data/npy_file.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/npy_files.h"
#include "tests/unit/data/test_files.h"
#include "tests/unit/data/zip_files.h"

namespace meshtrain {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;
using testing::Npy;
using testing::TempDir;
using testing::WritePlainFile;
using testing::Zip;

TEST(NpyFileTest, ReadsImagesAndLabelsAsNumPySavesThem) {
  TempDir dir;
  WritePlainFile(dir.File("x.npy"),
                 Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }",
                     Bytes<uint8_t>({0, 255, 51, 102, 1, 2, 3, 4})));
  WritePlainFile(dir.File("y.npy"), Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                        Bytes<int64_t>({9, 0}), 2));
  auto data = LoadNpyDataset(dir.File("x.npy"), dir.File("y.npy"), 255.0f, 10, "npy/train");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 2);
  ASSERT_EQ(data->inputs.shape().row_elements(), 4);
  // Bytes stay in the mapped file; a batch divides them.
  EXPECT_EQ(data->inputs.dtype(), DType::kUInt8);
  const Batch batch = DatasetRows(*data, 0, data->size());
  EXPECT_EQ(batch.inputs.data<float>()[1], 1.0f);
  EXPECT_EQ(batch.inputs.data<float>()[2], 51.0f / 255.0f);
  EXPECT_EQ(batch.inputs.data<float>()[7], 4.0f / 255.0f);
  EXPECT_EQ(data->labels.data<int32_t>()[0], 9);

  WritePlainFile(dir.File("f.npy"),
                 Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }",
                     Bytes<float>({0.5f, -2.0f})));
  WritePlainFile(
      dir.File("fy.npy"),
      Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", Bytes<double>({1.0, 0.0})));
  auto floats = LoadNpyDataset(dir.File("f.npy"), dir.File("fy.npy"), 1.0f, 2, "npy/test");
  ASSERT_TRUE(floats.ok()) << floats.status();
  EXPECT_EQ(floats->inputs.dtype(), DType::kFloat32);
  EXPECT_EQ(floats->inputs.data<float>()[1], -2.0f);
  EXPECT_EQ(floats->labels.data<int32_t>()[0], 1);
}

std::string OpenError(const std::string& bytes) {
  TempDir dir;
  WritePlainFile(dir.File("a.npy"), bytes);
  auto file = NpyFile::Open(dir.File("a.npy"));
  EXPECT_FALSE(file.ok());
  return std::string(file.status().message());
}

TEST(NpyFileTest, MalformedFilesNameTheProblem) {
  const std::string u8 = Bytes<uint8_t>({1, 2});
  EXPECT_THAT(OpenError(Npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2,), }", u8)),
              HasSubstr("Fortran order"));
  EXPECT_THAT(OpenError(Npy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                            Bytes<int32_t>({1, 2}))),
              HasSubstr("little-endian or single-byte"));
  EXPECT_THAT(OpenError(Npy("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", u8)),
              HasSubstr("is not numeric"));
  EXPECT_THAT(OpenError(Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u8)),
              HasSubstr("needs 3 bytes, the file holds 2"));
  EXPECT_THAT(OpenError(Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (-1,), }", u8)),
              HasSubstr("shape '(-1,)'"));
  EXPECT_THAT(OpenError(Npy("{'descr': '|u1', 'shape': (2,), }", u8)),
              HasSubstr("lacks descr, fortran_order or shape"));
  EXPECT_THAT(OpenError(std::string("PK\x03\x04") + std::string(40, '\0')),
              HasSubstr("a.npy: it is a zip archive (.npz); name an array inside as"));
  EXPECT_THAT(OpenError(std::string(40, 'x')), HasSubstr("no \\x93NUMPY magic"));
  std::string runs_past = Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", u8);
  runs_past[8] = '\xff';
  runs_past[9] = '\x7f';
  EXPECT_THAT(OpenError(runs_past), HasSubstr("the header runs past the end"));
}

TEST(NpyFileTest, LabelsMustBeClassesOfTheInputsRows) {
  TempDir dir;
  const std::string x =
      Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1), }", Bytes<uint8_t>({1, 2}));
  WritePlainFile(dir.File("x.npy"), x);
  WritePlainFile(
      dir.File("y3.npy"),
      Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", Bytes<uint8_t>({0, 1, 1})));
  WritePlainFile(
      dir.File("yf.npy"),
      Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", Bytes<float>({0.5f, 1.0f})));
  EXPECT_THAT(LoadNpyDataset(dir.File("x.npy"), dir.File("y3.npy"), 1, 2, "n").status().message(),
              HasSubstr("are not n examples and n labels"));
  EXPECT_THAT(LoadNpyDataset(dir.File("x.npy"), dir.File("yf.npy"), 1, 2, "n").status().message(),
              HasSubstr("label 0 (0.5) is not a class in [0, 2)"));
}

TEST(NpyFileTest, NpzMembersAreArraysStoredInPlaceOrInflated) {
  TempDir dir;
  const std::string x = Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                            Bytes<uint8_t>({0, 255, 51, 102}));
  const std::string f = Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }",
                            Bytes<double>({0.25, -3.0}));
  const std::string y =
      Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", Bytes<int64_t>({3, 1}));
  // Stored, as np.savez writes (x_train, y_train: keras' mnist.npz), and
  // deflated, as np.savez_compressed does.
  WritePlainFile(dir.File("mnist.npz"), Zip({{"x_train.npy", x}, {"y_train.npy", y}}));
  WritePlainFile(dir.File("c.npz"), Zip({{"f.npy", f, true}, {"y.npy", y, true}}, true));
  auto stored = LoadNpyDataset(dir.File("mnist.npz:x_train"), dir.File("mnist.npz:y_train.npy"),
                               255.0f, 4, "npz/train");
  ASSERT_TRUE(stored.ok()) << stored.status();
  // Bytes stay where they lie: in the archive's mapping.
  EXPECT_EQ(stored->inputs.dtype(), DType::kUInt8);
  EXPECT_EQ(stored->inputs.data<uint8_t>()[1], 255);
  EXPECT_EQ(DatasetRows(*stored, 0, 2).inputs.data<float>()[2], 51.0f / 255.0f);
  EXPECT_EQ(stored->labels.data<int32_t>()[0], 3);
  auto deflated = LoadNpyDataset(dir.File("c.npz:f"), dir.File("c.npz:y"), 1.0f, 4, "npz/test");
  ASSERT_TRUE(deflated.ok()) << deflated.status();
  EXPECT_EQ(deflated->inputs.dtype(), DType::kFloat32);
  EXPECT_EQ(deflated->inputs.data<float>()[1], -3.0f);

  const absl::Status missing = NpyFile::Open(dir.File("mnist.npz:x_test")).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("mnist.npz: no array 'x_test' (members: x_train.npy, "
                                           "y_train.npy); name one as "));
  EXPECT_THAT(NpyFile::Open(dir.File("mnist.npz")).status().message(),
              HasSubstr("mnist.npz: it is a zip archive (.npz) of x_train.npy, y_train.npy; name "
                        "an array inside as "));
  // A member that is no .npy names the archive and the member.
  WritePlainFile(dir.File("bad.npz"), Zip({{"x.npy", "not an array"}}));
  EXPECT_THAT(NpyFile::Open(dir.File("bad.npz:x")).status().message(),
              HasSubstr("bad.npz:x: not a .npy file we read: no \\x93NUMPY magic"));
}

}  // namespace
}  // namespace meshtrain

// Datasets in CSV files: a header line naming the columns, then one example a
// line; the label column (by name) holds the class, every other column a
// numeric input. Plain or GZIP files (zlib tells). Only numbers: a quoted
// field, a missing or extra column, a field that is not a number or a label
// that is not a class stop the load with the file, the line and the column.
#ifndef MESHTRAIN_RUNTIME_DATA_CSV_DATASET_H_
#define MESHTRAIN_RUNTIME_DATA_CSV_DATASET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/data/dataset.h"

namespace meshtrain {

struct CsvSpec {
  std::string label_column = "label";
  float divisor = 1.0f;  // inputs are value / divisor
  int num_classes = 0;   // labels must lie in [0, num_classes); at least 2
};

// Every line of `files` (each with the same header), in order, as one Dataset.
absl::StatusOr<Dataset> LoadCsvDataset(absl::Span<const std::string> files, const CsvSpec& spec,
                                       const std::string& name);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_CSV_DATASET_H_

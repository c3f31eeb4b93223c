// `meshtrain compare`: trains the same job under several strategies on this
// machine, one after the other, with the same data, seed and global batch,
// and writes DIR/report.json, DIR/report.html and a table on stdout
// (docs/compare.md). Each strategy's model directory is DIR/<strategy>/
// (summary.json, TensorBoard events, trace.json, output.log). A strategy that
// fails becomes a row with its error; the others still run.
//
// Exit status: 0 when every strategy finished, 3 when the report was written
// but some strategy failed, 2 for bad flags, 1 for other errors.
#ifndef MESHTRAIN_LAUNCHER_COMPARE_COMMAND_H_
#define MESHTRAIN_LAUNCHER_COMPARE_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

int RunCompareCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_COMPARE_COMMAND_H_

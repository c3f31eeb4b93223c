// `meshtrain certs`: makes a cluster's TLS credentials (docs/security.md): a CA
// and one pair shared by every task, or one pair per task (--tasks, or every
// task of TF_CONFIG's cluster with its host among the certificate's names).
#ifndef MESHTRAIN_LAUNCHER_CERTS_COMMAND_H_
#define MESHTRAIN_LAUNCHER_CERTS_COMMAND_H_

#include <string>
#include <vector>

namespace meshtrain {

int RunCertsCommand(const std::vector<std::string>& args);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_CERTS_COMMAND_H_

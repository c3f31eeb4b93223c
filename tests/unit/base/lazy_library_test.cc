// LazyLibrary and MESHTRAIN_LAZY_FORWARD: a library opened on first use, from
// the search path or the fallback folder, and a clear error when it is missing.
#include "runtime/base/lazy_library.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

// What a library's header declares: the test library's function, and one that
// no library has.
extern "C" int MeshtrainLazyTestAdd(int a, int b);
extern "C" int MeshtrainLazyTestMissing(int a);

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

// Built beside this test (lazy_library_test_dso.cc), in a folder that is not on
// the loader's search path: only the fallback finds it.
constexpr const char* kTestLibrary = "liblazy_library_test_dso.so";

LazyLibrary::Options MissingOptions() {
  return {"libmeshtrain_no_such_library.so.3", "/nonexistent/meshtrain",
          "install the meshtrain test kit"};
}

TEST(LazyLibraryTest, MissingLibrarySaysWhichFileAndWhatToDo) {
  LazyLibrary library(MissingOptions());
  const absl::Status& status = library.Load();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("libmeshtrain_no_such_library.so.3 could not be loaded"));
  // Both tries are named: the search path's and the fallback folder's.
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/meshtrain/libmeshtrain_no_such_library"));
  EXPECT_THAT(
      status.message(),
      HasSubstr("install the meshtrain test kit, or add its lib folder to LD_LIBRARY_PATH"));
  EXPECT_EQ(library.Symbol("anything"), nullptr);
  // Tried once: later calls return the same result.
  EXPECT_EQ(&library.Load(), &status);
}

TEST(LazyLibraryTest, LoadsFromTheSearchPath) {
  LazyLibrary library({"libm.so.6", "", "install libc"});
  ASSERT_TRUE(library.Load().ok()) << library.Load();
  auto* cosine = reinterpret_cast<double (*)(double)>(library.Symbol("cos"));
  ASSERT_NE(cosine, nullptr);
  EXPECT_EQ(cosine(0.0), 1.0);
  EXPECT_EQ(library.Symbol("meshtrain_no_such_symbol"), nullptr);
}

TEST(LazyLibraryTest, FallsBackToTheFolderTheBuildFoundItIn) {
  EXPECT_FALSE(LazyLibrary({kTestLibrary, "", "build the tests"}).Load().ok());
  LazyLibrary library({kTestLibrary, MESHTRAIN_TEST_DSO_DIR, "build the tests"});
  ASSERT_TRUE(library.Load().ok()) << library.Load();
  auto* value = static_cast<int*>(library.Symbol("meshtrain_lazy_test_value"));
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 7);
}

// Shims as the cuBLAS, NCCL and MPI ones are written, over the test library and
// over a missing one.
LazyLibrary& Present() {
  static LazyLibrary* const library =
      new LazyLibrary({kTestLibrary, MESHTRAIN_TEST_DSO_DIR, "build the tests"});
  return *library;
}
LazyLibrary& Missing() {
  static LazyLibrary* const library = new LazyLibrary(MissingOptions());
  return *library;
}

}  // namespace
}  // namespace meshtrain

MESHTRAIN_LAZY_FORWARD(meshtrain::Present(), -1, int, MeshtrainLazyTestAdd, (int a, int b), (a, b))
MESHTRAIN_LAZY_FORWARD(meshtrain::Missing(), -1, int, MeshtrainLazyTestMissing, (int a), (a))

namespace meshtrain {
namespace {

TEST(LazyForwardTest, ForwardsToTheLibraryOrReturnsTheMissingValue) {
  EXPECT_EQ(MeshtrainLazyTestAdd(2, 3), 5);
  EXPECT_EQ(MeshtrainLazyTestAdd(-4, 1), -3);
  EXPECT_EQ(MeshtrainLazyTestMissing(1), -1);
  EXPECT_THAT(Missing().Load().message(), HasSubstr("libmeshtrain_no_such_library.so.3"));
}

}  // namespace
}  // namespace meshtrain

// A shared library for lazy_library_test to open: one function, one datum.
extern "C" int MeshtrainLazyTestAdd(int a, int b) { return a + b; }
extern "C" {
int meshtrain_lazy_test_value = 7;
}

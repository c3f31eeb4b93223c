/* MPI_Allreduce (MPI_FLOAT, MPI_SUM, in place): the peer of `meshtrain bench
 * allreduce`, with the same method: per size 3 warm-up ops, then iterations of
 * MPI_Barrier; t0; MPI_Allreduce; t1 until min_time has passed (at least 5, at
 * most 2000); an iteration's time is the slowest rank's; the median is
 * reported. Rank 0 prints a JSON list of {size_bytes, time_s, algbw_gbps, busbw_gbps}.
 *
 *   mpicc -O2 -o mpi_allreduce scripts/peers/mpi_allreduce.c
 *   mpirun -np 2 ./mpi_allreduce MIN_TIME SIZE [SIZE ...]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, world;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  double min_time = argc > 1 ? atof(argv[1]) : 2.0;
  double* times = malloc(sizeof(double) * 2000);
  if (rank == 0) printf("[");
  for (int s = 2; s < argc; ++s) {
    size_t bytes = (size_t)atoll(argv[s]), n = bytes / sizeof(float);
    float* buf = malloc(bytes);
    for (size_t i = 0; i < n; ++i) buf[i] = 1.0f;
    for (int w = 0; w < 3; ++w) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    int iters = 0;
    double start = MPI_Wtime(), elapsed = 0;
    while (iters < 5 || (elapsed < min_time && iters < 2000)) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double t = MPI_Wtime() - t0, tmax;
      MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      times[iters++] = tmax;
      elapsed = MPI_Wtime() - start;
      MPI_Bcast(&elapsed, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    qsort(times, iters, sizeof(double), cmp);
    double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
    double algbw = bytes / med / 1e9;
    if (rank == 0) {
      printf("%s{\"size_bytes\": %zu, \"time_s\": %.9g, \"algbw_gbps\": %.6g, \"busbw_gbps\": %.6g, \"iters\": %d}",
             s > 2 ? ", " : "", bytes, med, algbw, algbw * 2.0 * (world - 1) / world, iters);
    }
    free(buf);
  }
  if (rank == 0) printf("]\n");
  free(times);
  MPI_Finalize();
  return 0;
}

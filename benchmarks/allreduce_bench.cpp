// The all-reduce rate between MPI ranks, as data-parallel training uses it (MPI_Iallreduce of
// floats, sum, in place, then wait): for each message size, the median time of `repeats`
// operations after a warm-up, the algorithm bandwidth (bytes / time) and the bus bandwidth
// (2 (N − 1) / N · bytes / time, what a ring all-reduce moves over each rank's link).
//   mpirun -np 2 build/benchmarks/allreduce_bench [repeats]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  if (rank == 0)
    std::printf("all-reduce (sum of floats) on %d ranks, median of %d\n%12s %12s %14s %14s\n", size,
                repeats, "bytes", "time (us)", "algbw (GB/s)", "busbw (GB/s)");
  for (std::size_t bytes = 4; bytes <= (std::size_t{16} << 20); bytes *= 4) {
    std::vector<float> values(bytes / sizeof(float), 1.0f);
    std::vector<double> times;
    for (int i = 0; i < repeats + 3; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto start = std::chrono::steady_clock::now();
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT,
                     MPI_SUM, MPI_COMM_WORLD, &request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // The slowest rank's time is the operation's.
      MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (i >= 3) times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    const double t = times[times.size() / 2];
    const double algbw = static_cast<double>(bytes) / t / 1e9;
    if (rank == 0)
      std::printf("%12zu %12.1f %14.3f %14.3f\n", bytes, t * 1e6, algbw,
                  algbw * 2.0 * (size - 1) / size);
  }
  MPI_Finalize();
  return 0;
}

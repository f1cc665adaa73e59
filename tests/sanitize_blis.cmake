# Read by ctest after the discovered gtest cases, in a sanitizer build only (tests/CMakeLists.txt;
# scripts/sanitize.sh). GCC 12's LeakSanitizer crashes at exit ("Tracer caught signal 11") scanning the dynamic
# thread-local storage of libblis, which the BLIS backend loads with dlopen; without that scan (use_tls=0) it
# takes the other backends' thread_local buffers for leaks. So the processes that load libblis check no leaks;
# ASan and UBSan check them as every other test, and the other backends' leaks are checked in their own tests.
foreach(t GemmBackends.BlisMatchesReference GemmBackends.LargeShapesMatchReference
          GemmBackends.ConcurrentCallsInsideParallelRegion GemmAuto.MeasuresOnceKeepsThePlanOnDiskAndComputesTheProduct
          CliRun.BenchPeakGemmRngAndTrainPrintTheirFigures)
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;ASAN_OPTIONS=$ENV{ASAN_OPTIONS}:detect_leaks=0")
endforeach()

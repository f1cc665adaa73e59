# Read by ctest after the discovered gtest cases, in a sanitizer build only (tests/CMakeLists.txt;
# scripts/sanitize.sh). GCC 12's LeakSanitizer crashes at exit ("Tracer caught signal 11") scanning the dynamic
# thread-local storage of libblis, which the BLIS backend loads with dlopen: the processes that load it scan no
# thread-local storage for roots (use_tls=0; nothing of manylm's lives there in them). ASan and UBSan check them
# as every other test.
foreach(t GemmBackends.BlisMatchesReference GemmBackends.LargeShapesMatchReference
          GemmBackends.ConcurrentCallsInsideParallelRegion GemmAuto.MeasuresOnceKeepsThePlanOnDiskAndComputesTheProduct
          CliRun.BenchPeakGemmRngAndTrainPrintTheirFigures)
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;LSAN_OPTIONS=$ENV{LSAN_OPTIONS}:use_tls=0")
endforeach()

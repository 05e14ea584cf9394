// The owner of the precompiled headers of the test programs and of the
// samples (tests/CMakeLists.txt, samples/CMakeLists.txt).

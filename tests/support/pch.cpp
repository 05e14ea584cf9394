// The owner of the test programs' precompiled headers (tests/CMakeLists.txt).

import PlyCLI

// `ply`: every command lives in the PlyCLI library (Sources/PlyCLI), where the fuzzer reaches it too.
PlyCLI.main()

import Foundation
import Testing

/// The built-in families' self-description (ABI 1.2, #14), checked by a plain-C host
/// (Tests/PluginDescribe/describe_check.c): every attribute list a model or composite passes
/// fits the type's attr_specs, and ResNet-18 and GoogLeNet described through `describe` and
/// `add_child` alone give the MACs, receptive fields, jumps and block children that `ply summary`
/// printed when it knew the blocks by type name.
@Suite struct PluginDescribeTests {
    @Test func describeReproducesTheSummaryNumbers() throws {
        #if os(Linux)
        let dir = try CCompiler.temporaryDirectory("describe")
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("describe_check")
        let source = CCompiler.repositoryRoot.appendingPathComponent("Tests/PluginDescribe/describe_check.c")
        let build = try CCompiler.run("cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", "-I", CCompiler.includeDirectory.path,
                                             source.path, "-ldl", "-lm", "-o", exe.path])
        try #require(build.status == 0, "cc: \(build.stderr)")
        let run = try CCompiler.run(exe.path, [CAPITests.buildDirectory])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("all describe checks passed"), "\(run.stdout)")
        #endif
    }
}

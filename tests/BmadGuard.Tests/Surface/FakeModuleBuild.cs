using System;
using System.IO;
using BmadGuard.Tests.Support;

namespace BmadGuard.Tests.Surface
{
    /// <summary>
    /// Assembles the FakeGuard fixture module once for the surface tests, with the same MSBuild target that
    /// assembles BmadGuard (build/BmadGuard.Module.proj -t:AssembleModule), and builds the fixture's defect variant.
    /// </summary>
    public sealed class FakeModuleBuild : IDisposable
    {
        private readonly TempDir _temp = new TempDir();

        public FakeModuleBuild()
        {
            OutputRoot = _temp.Combine("out");
            (int code, string output) = BuildSupport.DotnetBuild(
                BuildSupport.ModuleProj, "-t:AssembleModule", "-p:ModuleName=FakeGuard",
                "-p:ModuleSourceRoot=" + BuildSupport.FakeModuleRoot + "/", "-p:ModuleOutputRoot=" + OutputRoot + "/");
            AssembleExitCode = code;
            AssembleOutput = output;
            if (code != 0)
            {
                return;
            }

            // The same cmdlet project with -p:FakeGuardDefects=true: cmdlets that break the rules on purpose.
            DefectsDir = _temp.Combine("defects");
            (int dcode, string doutput) = BuildSupport.DotnetBuild(
                Path.Combine(BuildSupport.FakeModuleRoot, "src", "FakeGuard.PowerShell", "FakeGuard.PowerShell.csproj"),
                "-c", "Release", "-f", "net8.0", "-p:FakeGuardDefects=true", "-o", DefectsDir,
                "-p:IntermediateOutputPath=" + _temp.Combine("defects-obj") + "/");
            DefectsExitCode = dcode;
            DefectsOutput = doutput;
        }

        public string OutputRoot { get; }

        public string ModuleDir => Path.Combine(OutputRoot, "FakeGuard");

        public string DocsDir => Path.Combine(BuildSupport.FakeModuleRoot, "docs", "en-US");

        public int AssembleExitCode { get; }

        public string AssembleOutput { get; }

        public string DefectsDir { get; } = string.Empty;

        public int DefectsExitCode { get; } = -1;

        public string DefectsOutput { get; } = string.Empty;

        /// <summary>A private copy of the module folder and docs that a test may break.</summary>
        public (string ModuleDir, string DocsDir, TempDir Owner) Copy()
        {
            var t = new TempDir();
            string module = t.Combine("FakeGuard");
            string docs = t.Combine("docs");
            BuildSupport.CopyDirectory(ModuleDir, module);
            BuildSupport.CopyDirectory(DocsDir, docs);
            return (module, docs, t);
        }

        public void Dispose() => _temp.Dispose();
    }
}

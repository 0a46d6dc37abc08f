using System;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace BmadGuard.Tests.Surface
{
    /// <summary>Repository paths and a `dotnet build` runner for the tests that assemble a module folder.</summary>
    public static class BuildSupport
    {
        private static readonly Lazy<string> Root = new Lazy<string>(() =>
        {
            for (DirectoryInfo? d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "BmadGuard.slnx")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException("BmadGuard.slnx not found above " + AppContext.BaseDirectory);
        });

        public static string RepoRoot => Root.Value;

        public static string FakeModuleRoot => Path.Combine(RepoRoot, "tests", "fixtures", "FakeModule");

        public static string ModuleProj => Path.Combine(RepoRoot, "build", "BmadGuard.Module.proj");

        /// <summary>The PowerShell reference assembly copied next to the tests (see the csproj).</summary>
        public static string SmaReference => Path.Combine(AppContext.BaseDirectory, "surface-refs", "System.Management.Automation.dll");

        /// <summary>Runs `dotnet build ARGS` with build servers off (a lingering server would hold our output pipes).</summary>
        public static (int ExitCode, string Output) DotnetBuild(params string[] args)
        {
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = RepoRoot,
                StandardOutputEncoding = new UTF8Encoding(false),
            };
            psi.ArgumentList.Add("build");
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            psi.ArgumentList.Add("--disable-build-servers");
            psi.ArgumentList.Add("-nodeReuse:false");
            psi.ArgumentList.Add("-nologo");
            psi.ArgumentList.Add("-v:m");
            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["DOTNET_NOLOGO"] = "1";
            psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            psi.Environment["UseSharedCompilation"] = "false";
            // The test host may inherit MSBuild variables from `dotnet test`; the child build must pick its own.
            foreach (string v in new[] { "MSBuildExtensionsPath", "MSBUILD_EXE_PATH", "MSBuildSDKsPath", "MSBuildLoadMicrosoftTargetsReadOnly" })
            {
                psi.Environment.Remove(v);
            }

            using Process p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(600_000))
            {
                p.Kill(true);
                throw new TimeoutException("dotnet build " + string.Join(' ', args) + " did not finish in 10 minutes");
            }

            return (p.ExitCode, output + err.Result);
        }

        public static void CopyDirectory(string from, string to)
        {
            Directory.CreateDirectory(to);
            foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            {
                Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
            }

            foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            {
                File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)), overwrite: true);
            }
        }
    }
}

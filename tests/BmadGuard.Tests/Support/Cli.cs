using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace BmadGuard.Tests.Support
{
    /// <summary>Runs the real bmadguard CLI as a separate process (crash and concurrency tests need real processes).</summary>
    public static class Cli
    {
        /// <summary>Path of bmadguard.dll, built next to the test assembly by the project reference.</summary>
        public static string DllPath => System.IO.Path.Combine(AppContext.BaseDirectory, "bmadguard.dll");

        public static ProcessStartInfo StartInfo(IEnumerable<string> args, bool redirectStdin = false)
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = redirectStdin,
                UseShellExecute = false,
                StandardOutputEncoding = new UTF8Encoding(false),
                StandardErrorEncoding = new UTF8Encoding(false),
            };
            psi.ArgumentList.Add(DllPath);
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["DOTNET_TieredPGO"] = "0";
            return psi;
        }

        public sealed record Result(int ExitCode, string StdOut, string StdErr)
        {
            public string[] Lines => StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }

        /// <summary>
        /// Runs to completion, writing <paramref name="stdin"/> (when not null) to its standard input, and returns exit
        /// code and output. A separate name, not a Run overload: with <c>Run(string? stdin, params string[] args)</c>
        /// beside <c>Run(params string[] args)</c>, C# binds <c>Run("init", "--store", d)</c> to the stdin overload.
        /// </summary>
        public static Result RunWithStdin(string? stdin, params string[] args)
        {
            using var p = Process.Start(StartInfo(args, stdin != null))!;
            var err = p.StandardError.ReadToEndAsync();
            if (stdin != null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }

            string output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(120_000))
            {
                p.Kill(true);
                throw new TimeoutException("bmadguard " + string.Join(' ', args) + " did not finish in 120 s");
            }

            return new Result(p.ExitCode, output, err.Result);
        }

        /// <summary>Runs to completion with no standard input and returns exit code and output.</summary>
        public static Result Run(params string[] args) => RunWithStdin(null, args);
    }
}

using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// The module initializer, in a real separate process (the LoadProbe): BmadGuard.dll is loaded by path into
    /// the default load context as PowerShell 7 loads it, from the folder layout build.ps1 produces, and
    /// BmadGuard.Core and System.Text.Json must come from bin/net8.0/dependencies into the isolated context.
    /// </summary>
    public sealed class ModuleInitializerTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "bmadguard-ps-tests", Guid.NewGuid().ToString("N"));

        public void Dispose()
        {
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
            }
        }

        private static string Root()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "BmadGuard.slnx")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("repository root not found");
        }

        /// <summary>Debug or Release: the configuration this test assembly was built in.</summary>
        private static string Configuration() => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

        /// <summary>Lays out output/BmadGuard/bin/&lt;tfm&gt; as the module build does; returns BmadGuard.dll's path.</summary>
        private string LayOutModule(string tfm = "net8.0")
        {
            string built = Path.Combine(Root(), "src", "BmadGuard.PowerShell", "bin", Configuration(), tfm);
            string bin = Path.Combine(_dir, "BmadGuard", "bin", tfm);
            string deps = Path.Combine(bin, "dependencies");
            Directory.CreateDirectory(deps);
            foreach (string dll in Directory.GetFiles(built, "*.dll"))
            {
                string name = Path.GetFileName(dll);
                File.Copy(dll, Path.Combine(name == "BmadGuard.dll" ? bin : deps, name));
            }

            Assert.True(File.Exists(Path.Combine(deps, "BmadGuard.Core.dll")));
            Assert.True(File.Exists(Path.Combine(deps, "System.Text.Json.dll")));
            return Path.Combine(bin, "BmadGuard.dll");
        }

        private static string[] Probe(params string[] args)
        {
            string probe = Path.Combine(Root(), "tests", "BmadGuard.PowerShell.LoadProbe", "bin", Configuration(), "net10.0", "BmadGuard.PowerShell.LoadProbe.dll");
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(probe);
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd();
            string stderr = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(60_000), "the probe did not finish");
            Assert.True(p.ExitCode == 0, $"probe exit {p.ExitCode}: {stderr}");
            return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        }

        private static string Sma() => Path.Combine(AppContext.BaseDirectory, "System.Management.Automation.dll");

        [Fact]
        public void Core_and_System_Text_Json_load_from_the_dependencies_folder_into_the_isolated_context()
        {
            string moduleDll = LayOutModule();
            string deps = Path.Combine(Path.GetDirectoryName(moduleDll)!, "dependencies");
            var lines = Probe(moduleDll, Sma());

            Assert.Contains("data|2|2|x", lines); // Core converted the event data, System.Text.Json doing the parsing

            var module = lines.Single(l => l.StartsWith("BmadGuard|", StringComparison.Ordinal)).Split('|');
            Assert.Equal("Default", module[1]);

            var core = lines.Single(l => l.StartsWith("BmadGuard.Core|", StringComparison.Ordinal)).Split('|');
            Assert.Equal("BmadGuard.Dependencies", core[1]);
            Assert.Equal(Path.Combine(deps, "BmadGuard.Core.dll"), core[2]);

            var json = lines.Where(l => l.StartsWith("System.Text.Json|", StringComparison.Ordinal)).Select(l => l.Split('|')).ToArray();
            Assert.Contains(json, j => j[1] == "BmadGuard.Dependencies" && j[2] == Path.Combine(deps, "System.Text.Json.dll"));
            Assert.DoesNotContain(json, j => j[1] == "BmadGuard.Dependencies" && j[2] != Path.Combine(deps, "System.Text.Json.dll"));
        }

        [Fact]
        public void Schema_validation_loads_NJsonSchema_and_our_Newtonsoft_Json_in_isolation_beside_PowerShells_copy()
        {
            string moduleDll = LayOutModule();
            string deps = Path.Combine(Path.GetDirectoryName(moduleDll)!, "dependencies");
            foreach (string name in new[] { "NJsonSchema", "Newtonsoft.Json", "Namotion.Reflection" })
            {
                Assert.True(File.Exists(Path.Combine(deps, name + ".dll")), name);
            }

            Directory.CreateDirectory(Path.Combine(_dir, "files"));
            string json = Path.Combine(_dir, "files", "bus.json");
            string schema = Path.Combine(_dir, "files", "bus.schema.json");
            File.WriteAllText(json, "{\"events\":[{\"timestamp\":\"2026-01-01T00:00:00\",\"event\":\"a\",\"data\":{}},{\"timestamp\":\"2026-01-01T00:00:01\",\"event\":\"b\",\"data\":{}}]}");
            File.WriteAllText(schema, "{\"type\":\"object\",\"properties\":{\"events\":{\"type\":\"array\",\"maxItems\":1}}}");

            // PowerShell 7.4 has its own Newtonsoft.Json in the default context: stand in for it with a copy from elsewhere.
            string hostCopy = Path.Combine(_dir, "host", "Newtonsoft.Json.dll");
            Directory.CreateDirectory(Path.GetDirectoryName(hostCopy)!);
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Newtonsoft.Json.dll"), hostCopy);
            var lines = Probe(moduleDll, Sma(), "--preload", hostCopy, "--schema", json, schema);

            Assert.Contains("schema|False|SchemaViolation", lines);
            string[] Loaded(string name) => lines.Where(l => l.StartsWith(name + "|", StringComparison.Ordinal)).Select(l => l.Split('|')[1] + "|" + l.Split('|')[2]).ToArray();
            Assert.Contains("BmadGuard.Dependencies|" + Path.Combine(deps, "NJsonSchema.dll"), Loaded("NJsonSchema"));
            Assert.Contains("BmadGuard.Dependencies|" + Path.Combine(deps, "Newtonsoft.Json.dll"), Loaded("Newtonsoft.Json"));
            Assert.Contains("Default|" + hostCopy, Loaded("Newtonsoft.Json"));
            Assert.DoesNotContain(Loaded("NJsonSchema"), l => l.StartsWith("Default|", StringComparison.Ordinal));
        }

        [Fact]
        public void The_netstandard_build_resolves_Core_from_the_dependencies_folder()
        {
            // Windows PowerShell 5.1 (.NET Framework) cannot run here; on .NET the same AssemblyResolve hook runs
            // after the default context fails, which at least proves the hook finds and loads the engine.
            string moduleDll = LayOutModule("netstandard2.0");
            string deps = Path.Combine(Path.GetDirectoryName(moduleDll)!, "dependencies");
            var lines = Probe(moduleDll, Sma());
            Assert.Contains("data|2|2|x", lines);
            var core = lines.Single(l => l.StartsWith("BmadGuard.Core|", StringComparison.Ordinal)).Split('|');
            Assert.Equal(Path.Combine(deps, "BmadGuard.Core.dll"), core[2]);
        }

        [Fact]
        public void Without_the_initializer_Core_is_not_found_so_the_initializer_is_what_makes_it_load()
        {
            string moduleDll = LayOutModule();
            var lines = Probe(moduleDll, Sma(), "--no-init");
            string error = lines.Single(l => l.StartsWith("error|", StringComparison.Ordinal));
            Assert.Contains("FileNotFoundException", error);
            Assert.Contains("BmadGuard.Core", error);
            Assert.DoesNotContain(lines, l => l.StartsWith("BmadGuard.Core|", StringComparison.Ordinal));
        }
    }
}

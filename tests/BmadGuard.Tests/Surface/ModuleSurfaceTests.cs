using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using BmadGuard.HelpGen;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Surface
{
    /// <summary>
    /// The module build and the surface rules, proved on the FakeGuard fixture: a consistent module gives no
    /// finding, and each kind of mismatch (export, verb, ShouldProcess, OutputType, docs) gives the finding
    /// that names it.
    /// </summary>
    public sealed class ModuleSurfaceTests : IClassFixture<FakeModuleBuild>
    {
        private readonly FakeModuleBuild _build;
        private readonly ITestOutputHelper _output;

        public ModuleSurfaceTests(FakeModuleBuild build, ITestOutputHelper output)
        {
            _build = build;
            _output = output;
        }

        private string[] Host => new[] { BuildSupport.SmaReference };

        private void AssertAssembled()
        {
            Assert.True(_build.AssembleExitCode == 0, "AssembleModule failed:\n" + _build.AssembleOutput);
        }

        private List<string> CheckCopy(Action<string, string> breakIt)
        {
            AssertAssembled();
            (string module, string docs, TempDir owner) = _build.Copy();
            using (owner)
            {
                breakIt(module, docs);
                List<string> findings = ModuleSurface.Check(module, "FakeGuard", docs, Host);
                foreach (string f in findings)
                {
                    _output.WriteLine(f);
                }

                return findings;
            }
        }

        private static void Edit(string path, string from, string to)
        {
            string text = File.ReadAllText(path);
            Assert.Contains(from, text);
            File.WriteAllText(path, text.Replace(from, to));
        }

        [Fact]
        public void AssembleModule_lays_out_binaries_per_framework_with_isolated_dependencies_and_help()
        {
            AssertAssembled();
            string m = _build.ModuleDir;
            foreach (string tfm in new[] { "net8.0", "netstandard2.0" })
            {
                Assert.True(File.Exists(Path.Combine(m, "bin", tfm, "FakeGuard.dll")), tfm);
                Assert.True(File.Exists(Path.Combine(m, "bin", tfm, "dependencies", "System.Text.Json.dll")), tfm);
                Assert.False(File.Exists(Path.Combine(m, "bin", tfm, "System.Text.Json.dll")), "a dependency sits beside the cmdlet dll in " + tfm);
                Assert.Empty(Directory.GetFiles(Path.Combine(m, "bin", tfm), "System.Management.Automation.dll", SearchOption.AllDirectories));
            }

            Assert.True(File.Exists(Path.Combine(m, "FakeGuard.psd1")));
            Assert.True(File.Exists(Path.Combine(m, "FakeGuard.psm1")));
            Assert.True(File.Exists(Path.Combine(m, "FakeGuard.format.ps1xml")));
            Assert.True(File.Exists(Path.Combine(m, "en-US", "FakeGuard.dll-Help.xml")));
            Assert.True(File.Exists(Path.Combine(m, "en-US", "FakeGuard-Help.xml")));
            Assert.True(File.Exists(Path.Combine(m, "en-US", "about_FakeGuard.help.txt")));
            // module/FakeGuard.Tests.ps1 is in the source folder on purpose; it must not be published.
            Assert.True(File.Exists(Path.Combine(BuildSupport.FakeModuleRoot, "module", "FakeGuard.Tests.ps1")));
            Assert.Empty(Directory.GetFiles(m, "*.Tests.ps1", SearchOption.AllDirectories));
            Assert.Empty(ModuleLayout.Check(m, "FakeGuard", new[] { "net8.0", "netstandard2.0" }));
        }

        [Fact]
        public void Layout_check_refuses_test_build_and_host_files()
        {
            AssertAssembled();
            (string module, string _, TempDir owner) = _build.Copy();
            using (owner)
            {
                File.WriteAllText(Path.Combine(module, "Store.Tests.ps1"), "Describe 'x' {}");
                File.WriteAllText(Path.Combine(module, "bin", "net8.0", "dependencies", "System.Management.Automation.dll"), "x");
                File.Delete(Path.Combine(module, "en-US", "FakeGuard-Help.xml"));
                string psd1 = Path.Combine(module, "FakeGuard.psd1");
                File.WriteAllText(psd1, File.ReadAllText(psd1).Replace("ProjectUri = 'https://example.invalid/fakeguard'", string.Empty).Replace("CmdletsToExport      = @(", "CmdletsToExport      = @('*',"));
                List<string> problems = ModuleLayout.Check(module, "FakeGuard", new[] { "net8.0", "netstandard2.0", "net9.0" });
                Assert.Contains(problems, p => p.Contains("Store.Tests.ps1"));
                Assert.Contains(problems, p => p.Contains("System.Management.Automation.dll"));
                Assert.Contains(problems, p => p.Contains("FakeGuard-Help.xml"));
                Assert.Contains(problems, p => p.Contains("bin/net9.0/FakeGuard.dll is missing"));
                Assert.Contains(problems, p => p.Contains("no PrivateData.PSData.ProjectUri"));
                Assert.Contains(problems, p => p.Contains("CmdletsToExport uses a wildcard"));
            }
        }

        [Fact]
        public void Reads_cmdlets_from_metadata_with_inherited_parameters()
        {
            AssertAssembled();
            foreach (string tfm in new[] { "net8.0", "netstandard2.0" })
            {
                List<ModuleSurface.CommandInfo> cmdlets = ModuleSurface.ReadCmdlets(Path.Combine(_build.ModuleDir, "bin", tfm, "FakeGuard.dll"), Host);
                Assert.Equal(new[] { "Get-FakeThing", "Set-FakeThing" }, cmdlets.Select(c => c.Name).OrderBy(n => n).ToArray());
                ModuleSurface.CommandInfo get = cmdlets.Single(c => c.Name == "Get-FakeThing");
                Assert.Equal(new[] { "Id", "Name", "Store" }, get.Parameters.ToArray());
                Assert.False(get.SupportsShouldProcess);
                Assert.True(get.HasOutputType);
                Assert.True(cmdlets.Single(c => c.Name == "Set-FakeThing").SupportsShouldProcess);
            }
        }

        [Fact]
        public void Reads_psm1_functions_with_their_param_block()
        {
            List<ModuleSurface.CommandInfo> functions = ModuleSurface.ReadFunctions(Path.Combine(BuildSupport.FakeModuleRoot, "module", "FakeGuard.psm1"));
            ModuleSurface.CommandInfo f = Assert.Single(functions);
            Assert.Equal("Invoke-FakeCheck", f.Name);
            Assert.True(f.SupportsShouldProcess);
            Assert.Equal(new[] { "OutputFormat", "PassThru", "Store" }, f.Parameters.ToArray());
        }

        [Fact]
        public void Consistent_fixture_module_has_no_findings()
        {
            List<string> findings = CheckCopy((m, d) => { });
            Assert.Empty(findings);
        }

        public static IEnumerable<object[]> Mismatches()
        {
            yield return Case("cmdlet not exported", "cmdlet Set-FakeThing (FakeGuard.SetFakeThingCommand) is not in CmdletsToExport",
                (m, d) => Edit(Path.Combine(m, "FakeGuard.psd1"), "'Set-FakeThing'", string.Empty));
            yield return Case("export without a cmdlet", "CmdletsToExport names Get-Ghost, but no [Cmdlet] class defines it",
                (m, d) => Edit(Path.Combine(m, "FakeGuard.psd1"), "'Set-FakeThing'", "'Set-FakeThing'\n        'Get-Ghost'"));
            yield return Case("function not exported", "function Invoke-FakeCheck (FakeGuard.psm1) is not in FunctionsToExport",
                (m, d) => Edit(Path.Combine(m, "FakeGuard.psd1"), "FunctionsToExport    = 'Invoke-FakeCheck'", "FunctionsToExport    = @()"));
            yield return Case("export without a function", "FunctionsToExport names Invoke-Gone, but no psm1 declares 'function Invoke-Gone'",
                (m, d) => Edit(Path.Combine(m, "FakeGuard.psd1"), "FunctionsToExport    = 'Invoke-FakeCheck'", "FunctionsToExport    = 'Invoke-FakeCheck', 'Invoke-Gone'"));
            yield return Case("state-changing function without ShouldProcess", "function Clear-FakeCache: 'Clear' changes state but the command does not declare SupportsShouldProcess",
                (m, d) =>
                {
                    File.AppendAllText(Path.Combine(m, "FakeGuard.psm1"), "\nfunction Clear-FakeCache {\n    [CmdletBinding()]\n    param()\n}\n");
                    Edit(Path.Combine(m, "FakeGuard.psd1"), "FunctionsToExport    = 'Invoke-FakeCheck'", "FunctionsToExport    = 'Invoke-FakeCheck', 'Clear-FakeCache'");
                });
            yield return Case("unapproved function verb", "function Fetch-FakeThing: 'Fetch' is not an approved verb",
                (m, d) => File.AppendAllText(Path.Combine(m, "FakeGuard.psm1"), "\nfunction Fetch-FakeThing { param() }\n"));
            yield return Case("command without a docs page", "cmdlet Set-FakeThing has no docs page",
                (m, d) => File.Delete(Path.Combine(d, "Set-FakeThing.md")));
            yield return Case("docs page for a command that does not exist", "docs page Get-Ghost.md documents Get-Ghost, which the module does not export",
                (m, d) => File.Copy(Path.Combine(d, "Set-FakeThing.md"), Path.Combine(d, "Get-Ghost.md")));
            yield return Case("cmdlet parameter missing from the docs", "cmdlet Get-FakeThing: parameter -Id is not documented in Get-FakeThing.md",
                (m, d) =>
                {
                    string page = Path.Combine(d, "Get-FakeThing.md");
                    string text = File.ReadAllText(page);
                    text = Regex.Replace(text, @"### -Id\n.*?```yaml\n.*?```\n", string.Empty, RegexOptions.Singleline);
                    text = text.Replace("Get-FakeThing -Id <Int32> [-Store <String>]", "Get-FakeThing [-Store <String>]").Replace("### Id\n", "### Id\n");
                    File.WriteAllText(page, text);
                });
            yield return Case("docs parameter the code lacks", "function Invoke-FakeCheck: Invoke-FakeCheck.md documents -PassThru, which the command does not have",
                (m, d) => Edit(Path.Combine(m, "FakeGuard.psm1"), ",\n\n        [switch] $PassThru", string.Empty));
            yield return Case("WhatIf/Confirm not documented for a ShouldProcess command", "cmdlet Set-FakeThing: parameter -Confirm is not documented in Set-FakeThing.md",
                (m, d) =>
                {
                    string page = Path.Combine(d, "Set-FakeThing.md");
                    string text = File.ReadAllText(page);
                    text = Regex.Replace(text, @"### -Confirm\n.*?```yaml\n.*?```\n", string.Empty, RegexOptions.Singleline).Replace(" [-Confirm]", string.Empty);
                    File.WriteAllText(page, text);
                });
            yield return Case("docs page routed to the wrong MAML file", "cmdlet Get-FakeThing: docs page says 'external help file: FakeGuard-Help.xml', expected FakeGuard.dll-Help.xml",
                (m, d) => Edit(Path.Combine(d, "Get-FakeThing.md"), "external help file: FakeGuard.dll-Help.xml", "external help file: FakeGuard-Help.xml"));
            yield return Case("command missing from the built help", "function Invoke-FakeCheck has no entry in the built help en-US/FakeGuard-Help.xml",
                (m, d) => File.Delete(Path.Combine(m, "en-US", "FakeGuard-Help.xml")));
        }

        private static object[] Case(string name, string expected, Action<string, string> breakIt) => new object[] { name, expected, breakIt };

        [Theory]
        [MemberData(nameof(Mismatches))]
        public void Each_mismatch_is_reported_by_name(string name, string expected, Action<string, string> breakIt)
        {
            List<string> findings = CheckCopy(breakIt);
            Assert.True(findings.Any(f => f.Contains(expected, StringComparison.Ordinal)),
                $"{name}: expected a finding containing\n  {expected}\ngot:\n  " + string.Join("\n  ", findings));
        }

        [Fact]
        public void Defective_cmdlets_are_reported_unapproved_verb_no_ShouldProcess_no_OutputType()
        {
            AssertAssembled();
            Assert.True(_build.DefectsExitCode == 0, "defect build failed:\n" + _build.DefectsOutput);
            List<string> findings = CheckCopy((m, d) =>
            {
                // The module as it would be with the defective assembly, exported and documented: only the
                // rules about verbs, ShouldProcess and OutputType are left to break.
                Directory.Delete(Path.Combine(m, "bin", "netstandard2.0"), recursive: true);
                File.Copy(Path.Combine(_build.DefectsDir, "FakeGuard.dll"), Path.Combine(m, "bin", "net8.0", "FakeGuard.dll"), overwrite: true);
                Edit(Path.Combine(m, "FakeGuard.psd1"), "'Set-FakeThing'", "'Set-FakeThing'\n        'Grab-FakeLoot'\n        'Remove-FakeThing'");
            });
            Assert.Contains("cmdlet Grab-FakeLoot: 'Grab' is not an approved verb", findings);
            Assert.Contains("cmdlet Grab-FakeLoot (FakeGuard.GrabFakeLootCommand) has no [OutputType]", findings);
            Assert.Contains("cmdlet Remove-FakeThing: 'Remove' changes state but the command does not declare SupportsShouldProcess", findings);
            Assert.DoesNotContain(findings, f => f.Contains("Set-FakeThing: 'Set'"));
        }

        [Fact]
        public void Psd1_reader_takes_the_manifest_keys_it_needs()
        {
            Dictionary<string, object?> data = PowerShellData.ReadFile(Path.Combine(BuildSupport.FakeModuleRoot, "FakeGuard.psd1"));
            Assert.Equal(new[] { "Get-FakeThing", "Set-FakeThing" }, PowerShellData.StringList(data, "CmdletsToExport"));
            Assert.Equal(new[] { "Invoke-FakeCheck" }, PowerShellData.StringList(data, "FunctionsToExport"));
            Assert.Empty(PowerShellData.StringList(data, "AliasesToExport"));
            Assert.Equal("0.3.0", data["moduleversion"]);
            var psData = (Dictionary<string, object?>)((Dictionary<string, object?>)data["PrivateData"]!)["PSData"]!;
            Assert.Equal(new[] { "fixture", "events" }, PowerShellData.StringList(psData, "Tags"));
        }

        [Theory]
        [InlineData("@{\n  A = 'x'\n  B = $env:HOME\n}", 3, "variable")]
        [InlineData("@{\n  A = 'x\n}", 2, "never closed")]
        [InlineData("@{\n  A = @('a',,'b')\n}", 2, "empty item")]
        [InlineData("@{\n  A = 1\n  A = 2\n}", 3, "duplicate key")]
        [InlineData("@{\n  A = \"$(Get-Date)\"\n}", 2, "may not expand")]
        [InlineData("@{ A = 1 ", 1, "never closed")]
        public void Psd1_reader_rejects_what_Import_PowerShellDataFile_rejects(string text, int line, string problem)
        {
            HelpFormatException e = Assert.Throws<HelpFormatException>(() => PowerShellData.Parse(text, "X.psd1"));
            Assert.Equal(line, e.Line);
            Assert.Contains(problem, e.Problem);
            Assert.StartsWith($"X.psd1:{line}: ", e.Message);
        }
    }
}

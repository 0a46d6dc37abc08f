using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Checks an assembled module folder before it is published: the manifest's files are there, each target
    /// framework has its binary, help is built, and nothing from tests or the build (nor a PowerShell engine
    /// assembly, which the host provides) slipped in.
    /// </summary>
    public static class ModuleLayout
    {
        /// <summary>File name patterns that never belong in a published module.</summary>
        private static readonly Regex[] Forbidden =
        {
            new Regex(@"\.Tests\.ps1$", RegexOptions.IgnoreCase),
            new Regex(@"^build\.ps1$", RegexOptions.IgnoreCase),
            new Regex(@"\.(cs|csproj|proj|props|targets|sln|slnx|md|nupkg|pdb|deps\.json|runtimeconfig\.json|trx)$", RegexOptions.IgnoreCase),
            new Regex(@"^(xunit|Microsoft\.NET\.Test\.Sdk|Microsoft\.TestPlatform|testhost|Pester|BmadGuard\.Tests|BmadGuard\.HelpGen)", RegexOptions.IgnoreCase),
            new Regex(@"^(System\.Management\.Automation|Microsoft\.PowerShell\.[A-Za-z.]+|Microsoft\.Management\.Infrastructure)\.dll$", RegexOptions.IgnoreCase),
        };

        private static readonly string[] ForbiddenFolders = { "tests", "obj", "node_modules", ".git", "TestResults", "docs" };

        public static List<string> Check(string moduleDir, string moduleName, IEnumerable<string> targetFrameworks)
        {
            var problems = new List<string>();
            string manifestPath = Path.Combine(moduleDir, moduleName + ".psd1");
            if (!File.Exists(manifestPath))
            {
                problems.Add($"{moduleName}.psd1 is missing from {moduleDir}");
                return problems;
            }

            Dictionary<string, object?> manifest;
            try
            {
                manifest = PowerShellData.ReadFile(manifestPath);
            }
            catch (HelpFormatException e)
            {
                problems.Add(e.Message);
                return problems;
            }

            foreach (string key in new[] { "ModuleVersion", "GUID", "Author", "Description", "PowerShellVersion" })
            {
                if (!manifest.TryGetValue(key, out object? v) || v is not string s || s.Trim().Length == 0)
                {
                    problems.Add($"{moduleName}.psd1 has no {key}");
                }
            }

            IDictionary<string, object?>? psData = manifest.TryGetValue("PrivateData", out object? pd) && pd is IDictionary<string, object?> pdt
                && pdt.TryGetValue("PSData", out object? psd) ? psd as IDictionary<string, object?> : null;
            if (psData == null || PowerShellData.StringList(psData, "Tags").Count == 0)
            {
                problems.Add($"{moduleName}.psd1 has no PrivateData.PSData.Tags (the gallery's search terms)");
            }

            if (psData == null || !psData.TryGetValue("ProjectUri", out object? uri) || uri is not string u || u.Trim().Length == 0)
            {
                problems.Add($"{moduleName}.psd1 has no PrivateData.PSData.ProjectUri");
            }

            if (PowerShellData.StringList(manifest, "FormatsToProcess").Count == 0)
            {
                problems.Add($"{moduleName}.psd1 has no FormatsToProcess (the table views of the output types)");
            }

            List<string> editions = PowerShellData.StringList(manifest, "CompatiblePSEditions");
            foreach (string edition in new[] { "Desktop", "Core" })
            {
                if (!editions.Contains(edition, StringComparer.OrdinalIgnoreCase))
                {
                    problems.Add($"{moduleName}.psd1 CompatiblePSEditions lacks {edition}");
                }
            }

            foreach (string key in new[] { "CmdletsToExport", "FunctionsToExport", "AliasesToExport", "VariablesToExport" })
            {
                if (!manifest.ContainsKey(key))
                {
                    problems.Add($"{moduleName}.psd1 has no explicit {key} (an absent key exports everything)");
                }
                else if (PowerShellData.StringList(manifest, key).Any(n => n.Contains('*') || n.Contains('?')))
                {
                    problems.Add($"{moduleName}.psd1 {key} uses a wildcard; list every export by name");
                }
            }

            var referenced = new List<string>();
            referenced.AddRange(PowerShellData.StringList(manifest, "RootModule"));
            referenced.AddRange(PowerShellData.StringList(manifest, "NestedModules"));
            referenced.AddRange(PowerShellData.StringList(manifest, "FormatsToProcess"));
            referenced.AddRange(PowerShellData.StringList(manifest, "TypesToProcess"));
            foreach (string file in referenced)
            {
                // A module name (no extension, no folder) refers to another module, not a file here.
                if (Path.GetExtension(file).Length == 0)
                {
                    continue;
                }

                string full = Path.Combine(moduleDir, file.Replace('\\', Path.DirectorySeparatorChar));
                if (!File.Exists(full))
                {
                    problems.Add($"{moduleName}.psd1 names '{file}', which is not in the module folder");
                }
            }

            foreach (string tfm in targetFrameworks)
            {
                string dll = Path.Combine(moduleDir, "bin", tfm, moduleName + ".dll");
                if (!File.Exists(dll))
                {
                    problems.Add($"bin/{tfm}/{moduleName}.dll is missing");
                }
            }

            string cmdletHelp = Path.Combine(moduleDir, "en-US", moduleName + ".dll-Help.xml");
            if (!File.Exists(cmdletHelp) && PowerShellData.StringList(manifest, "CmdletsToExport").Count > 0)
            {
                problems.Add($"en-US/{moduleName}.dll-Help.xml (help for the cmdlets) is missing");
            }

            string functionHelp = Path.Combine(moduleDir, "en-US", moduleName + "-Help.xml");
            if (!File.Exists(functionHelp) && PowerShellData.StringList(manifest, "FunctionsToExport").Count > 0)
            {
                problems.Add($"en-US/{moduleName}-Help.xml (help for the functions) is missing");
            }

            foreach (string path in Directory.EnumerateFileSystemEntries(moduleDir, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(moduleDir, path).Replace('\\', '/');
                string name = Path.GetFileName(path);
                if (Directory.Exists(path))
                {
                    if (ForbiddenFolders.Contains(name, StringComparer.OrdinalIgnoreCase))
                    {
                        problems.Add($"{rel}/ is a test or build folder and must not be published");
                    }

                    continue;
                }

                if (Forbidden.Any(r => r.IsMatch(name)))
                {
                    problems.Add($"{rel} is a test, build or host file and must not be published");
                }
            }

            return problems;
        }
    }
}

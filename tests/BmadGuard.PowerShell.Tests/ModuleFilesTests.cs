using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>The manifest and the format file agree with the code (read as text: no PowerShell here).</summary>
    public class ModuleFilesTests
    {
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

        private static string[] ListedIn(string manifest, string key)
        {
            var m = Regex.Match(manifest, key + @"\s*=\s*@\((?<body>[^)]*)\)", RegexOptions.Singleline);
            Assert.True(m.Success, $"{key} not found");
            return Regex.Matches(m.Groups["body"].Value, @"'([^']*)'").Select(x => x.Groups[1].Value).ToArray();
        }

        [Fact]
        public void The_manifest_exports_every_cmdlet_by_name_and_nothing_else()
        {
            string manifest = File.ReadAllText(Path.Combine(Root(), "BmadGuard.psd1"));
            string[] listed = ListedIn(manifest, "CmdletsToExport");
            Assert.DoesNotContain(listed, n => n.Contains('*'));
            var cmdlets = CmdletSurfaceTests.CmdletTypes()
                .Select(o => ((Type)o[0]).GetCustomAttributesData().First(a => a.AttributeType == typeof(CmdletAttribute)))
                .Select(a => $"{a.ConstructorArguments[0].Value}-{a.ConstructorArguments[1].Value}");
            Assert.Equal(cmdlets.OrderBy(n => n), listed.OrderBy(n => n));
            Assert.DoesNotContain(ListedIn(manifest, "FunctionsToExport"), n => n.Contains('*'));
        }

        [Fact]
        public void The_manifest_has_what_the_gallery_needs()
        {
            string manifest = File.ReadAllText(Path.Combine(Root(), "BmadGuard.psd1"));
            Assert.Matches(@"RootModule\s*=\s*'BmadGuard\.psm1'", manifest);
            Assert.Matches(@"ModuleVersion\s*=\s*'0\.1\.0'", manifest);
            Assert.Matches(@"GUID\s*=\s*'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'", manifest);
            Assert.Matches(@"PowerShellVersion\s*=\s*'5\.1'", manifest);
            Assert.Matches(@"FormatsToProcess\s*=\s*@\('BmadGuard\.format\.ps1xml'\)", manifest);
            Assert.Equal(new[] { "Desktop", "Core" }, ListedIn(manifest, "CompatiblePSEditions"));
            Assert.Matches(@"ProjectUri\s*=\s*'https://github\.com/bmadguard/bmadguard'", manifest);
            Assert.Matches(@"Description\s*=\s*'[^']{20,}'", manifest);
            Assert.NotEmpty(ListedIn(manifest, "Tags"));
        }

        [Fact]
        public void The_format_file_has_a_table_view_for_every_output_type()
        {
            var doc = XDocument.Load(Path.Combine(Root(), "module", "BmadGuard.format.ps1xml"));
            var viewed = doc.Descendants("View")
                .Where(v => v.Element("TableControl") != null)
                .Select(v => v.Element("ViewSelectedBy")!.Element("TypeName")!.Value)
                .ToHashSet();
            var outputTypes = CmdletSurfaceTests.CmdletTypes()
                .SelectMany(o => ((Type)o[0]).GetCustomAttributesData().Where(a => a.AttributeType == typeof(OutputTypeAttribute)))
                .SelectMany(a => (System.Collections.Generic.IEnumerable<System.Reflection.CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!)
                .Select(a => ((Type)a.Value!).FullName!)
                .Distinct();
            foreach (string type in outputTypes)
            {
                Assert.Contains(type, viewed);
            }

            // Every column a view names by property exists on its type. A view of a type that is not compiled is for
            // an object the psm1 builds, and the psm1 must give it that PSTypeName.
            string psm1 = File.ReadAllText(Path.Combine(Root(), "module", "BmadGuard.psm1"));
            foreach (var view in doc.Descendants("View"))
            {
                string typeName = view.Element("ViewSelectedBy")!.Element("TypeName")!.Value;
                var type = typeof(BmadGuard.BmadEvent).Assembly.GetType(typeName);
                if (type == null)
                {
                    Assert.True(psm1.Contains($"PSTypeName = '{typeName}'"), $"{typeName} is neither a compiled type nor a PSTypeName the psm1 sets");
                    continue;
                }

                foreach (var property in view.Descendants("PropertyName").Select(p => p.Value))
                {
                    Assert.True(type.GetProperty(property) != null, $"{type.Name} has no property {property}");
                }
            }
        }
    }
}

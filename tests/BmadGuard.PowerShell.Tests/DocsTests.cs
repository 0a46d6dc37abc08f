using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// Each cmdlet's PlatyPS page in docs/en-US says what the code does: the same parameters, with the same
    /// Required, Position and pipeline input, and at least two examples.
    /// </summary>
    public class DocsTests
    {
        private static readonly string DocsDir = Path.Combine(RepoRoot(), "docs", "en-US");

        private static string RepoRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "BmadGuard.slnx")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("BmadGuard.slnx not found above " + AppContext.BaseDirectory);
        }

        public static IEnumerable<object[]> CmdletTypes() => CmdletSurfaceTests.CmdletTypes();

        private static string CommandName(Type t)
        {
            var a = t.GetCustomAttributesData().First(x => x.AttributeType == typeof(CmdletAttribute));
            return $"{a.ConstructorArguments[0].Value}-{a.ConstructorArguments[1].Value}";
        }

        private sealed class DocParameter
        {
            public string Name = "";
            public string Required = "";
            public string Position = "";
            public string Pipeline = "";
        }

        private static Dictionary<string, DocParameter> ParseParameters(string markdown)
        {
            var result = new Dictionary<string, DocParameter>(StringComparer.OrdinalIgnoreCase);
            var sections = Regex.Split(markdown, @"^### -", RegexOptions.Multiline).Skip(1);
            foreach (string section in sections)
            {
                string name = section.Substring(0, section.IndexOfAny(new[] { '\r', '\n' })).Trim();
                string Field(string key) => Regex.Match(section, "^" + key + @":[ \t]*(.*)$", RegexOptions.Multiline).Groups[1].Value.Trim();
                result[name] = new DocParameter { Name = name, Required = Field("Required"), Position = Field("Position"), Pipeline = Field("Accept pipeline input") };
            }

            return result;
        }

        [Theory]
        [MemberData(nameof(CmdletTypes))]
        public void Every_cmdlet_has_a_page_that_matches_its_parameters(Type type)
        {
            string name = CommandName(type);
            string path = Path.Combine(DocsDir, name + ".md");
            Assert.True(File.Exists(path), $"missing {path}");
            string md = File.ReadAllText(path);

            Assert.Contains("external help file: BmadGuard.dll-Help.xml", md);
            Assert.Contains("Module Name: BmadGuard", md);
            Assert.Contains("schema: 2.0.0", md);
            foreach (string heading in new[] { "## SYNOPSIS", "## SYNTAX", "## DESCRIPTION", "## EXAMPLES", "## PARAMETERS", "### CommonParameters", "## INPUTS", "## OUTPUTS", "## NOTES" })
            {
                Assert.Contains(heading, md);
            }

            Assert.True(Regex.Matches(md, @"^### Example \d+", RegexOptions.Multiline).Count >= 2, $"{name} needs at least two examples");

            var documented = ParseParameters(md.Substring(md.IndexOf("## PARAMETERS", StringComparison.Ordinal)));
            documented.Remove("CommonParameters");

            var code = type.GetProperties()
                .Select(p => (Property: p, Attrs: p.GetCustomAttributesData().Where(a => a.AttributeType == typeof(ParameterAttribute)).ToList()))
                .Where(x => x.Attrs.Count > 0)
                .ToList();
            var expectedNames = code.Select(x => x.Property.Name).ToList();
            var cmdlet = type.GetCustomAttributesData().First(a => a.AttributeType == typeof(CmdletAttribute));
            if (cmdlet.NamedArguments.Any(n => n.MemberName == "SupportsShouldProcess" && n.TypedValue.Value is true))
            {
                expectedNames.Add("WhatIf");
                expectedNames.Add("Confirm");
            }

            Assert.Equal(expectedNames.OrderBy(n => n), documented.Keys.OrderBy(n => n), StringComparer.OrdinalIgnoreCase);

            foreach (var (property, attrs) in code)
            {
                var doc = documented[property.Name];
                object? Named(CustomAttributeData a, string n) => a.NamedArguments.Where(x => x.MemberName == n).Select(x => x.TypedValue.Value).FirstOrDefault();
                bool required = attrs.All(a => Named(a, "Mandatory") is true);
                Assert.True(string.Equals(required ? "True" : "False", doc.Required, StringComparison.Ordinal), $"{name} -{property.Name}: Required is {doc.Required}");

                int? position = attrs.Select(a => Named(a, "Position") as int?).FirstOrDefault(p => p.HasValue && p.Value >= 0);
                Assert.True(string.Equals(position?.ToString() ?? "Named", doc.Position, StringComparison.Ordinal), $"{name} -{property.Name}: Position is {doc.Position}");

                bool byValue = attrs.Any(a => Named(a, "ValueFromPipeline") is true);
                bool byName = attrs.Any(a => Named(a, "ValueFromPipelineByPropertyName") is true);
                Assert.True(byValue == doc.Pipeline.Contains("ByValue"), $"{name} -{property.Name}: pipeline input is '{doc.Pipeline}'");
                Assert.True(byName == doc.Pipeline.Contains("ByPropertyName"), $"{name} -{property.Name}: pipeline input is '{doc.Pipeline}'");
                Assert.True((byValue || byName) == doc.Pipeline.StartsWith("True", StringComparison.Ordinal), $"{name} -{property.Name}: pipeline input is '{doc.Pipeline}'");
            }
        }

        [Fact]
        public void The_about_page_explains_the_store_its_guarantees_and_recovery()
        {
            string md = File.ReadAllText(Path.Combine(DocsDir, "about_BmadGuard.md"));
            Assert.Contains("## SHORT DESCRIPTION", md);
            Assert.Contains("### The guarantees", md);
            Assert.Contains("### Recovering by hand", md);
            foreach (var t in CmdletTypes().Select(o => (Type)o[0]))
            {
                Assert.Contains(CommandName(t), md);
            }
        }
    }
}

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Xml;
using System.Xml.Linq;
using BmadGuard.HelpGen;
using BmadGuard.Tests.Support;
using BmadGuard.Tests.Surface;
using Xunit;

namespace BmadGuard.Tests.Help
{
    /// <summary>
    /// The C# MAML generator (the New-ExternalHelp equivalent) on the FakeGuard fixture pages: the XML is valid
    /// and holds what Get-Help reads (synopsis, a syntax item per parameter set, parameters, examples), and bad
    /// markdown stops the build with the file and line.
    /// </summary>
    public sealed class HelpGenTests
    {
        private static readonly XNamespace Maml = MamlWriter.Maml;
        private static readonly XNamespace Command = MamlWriter.Command;
        private static readonly XNamespace Dev = MamlWriter.Dev;

        private static string FixtureDocs => Path.Combine(BuildSupport.FakeModuleRoot, "docs", "en-US");

        private static XDocument LoadStrict(string path)
        {
            // Well-formed XML with no DTD: what Get-Help's XmlDocument load accepts.
            using XmlReader reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
            return XDocument.Load(reader);
        }

        private static XElement CommandElement(XDocument doc, string name) =>
            doc.Root!.Elements(Command + "command").Single(c => c.Element(Command + "details")!.Element(Command + "name")!.Value == name);

        private static string[] SyntaxParameterNames(XElement syntaxItem) =>
            syntaxItem.Elements(Command + "parameter").Select(p => p.Element(Maml + "name")!.Value).ToArray();

        [Fact]
        public void Builds_cmdlet_and_function_MAML_by_external_help_file()
        {
            using var temp = new TempDir();
            HelpBuilder.Result result = HelpBuilder.Build(FixtureDocs, temp.Path);
            Assert.Equal(
                new[] { "FakeGuard-Help.xml", "FakeGuard.dll-Help.xml", "about_FakeGuard.help.txt" },
                Directory.GetFiles(temp.Path).Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray());

            XDocument cmdlets = LoadStrict(temp.Combine("FakeGuard.dll-Help.xml"));
            XDocument functions = LoadStrict(temp.Combine("FakeGuard-Help.xml"));
            Assert.Equal("helpItems", cmdlets.Root!.Name.LocalName);
            Assert.Equal("maml", cmdlets.Root.Attribute("schema")!.Value);
            Assert.Equal(new[] { "Get-FakeThing", "Set-FakeThing" },
                cmdlets.Root.Elements(Command + "command").Select(c => c.Element(Command + "details")!.Element(Command + "name")!.Value).ToArray());
            Assert.Equal(new[] { "Invoke-FakeCheck" },
                functions.Root!.Elements(Command + "command").Select(c => c.Element(Command + "details")!.Element(Command + "name")!.Value).ToArray());
        }

        [Fact]
        public void Command_help_has_synopsis_syntax_per_parameter_set_parameters_and_examples()
        {
            using var temp = new TempDir();
            HelpBuilder.Build(FixtureDocs, temp.Path);
            XElement get = CommandElement(LoadStrict(temp.Combine("FakeGuard.dll-Help.xml")), "Get-FakeThing");

            XElement details = get.Element(Command + "details")!;
            Assert.Equal("Get", details.Element(Command + "verb")!.Value);
            Assert.Equal("FakeThing", details.Element(Command + "noun")!.Value);
            Assert.Equal("Gets fake things from a fake store.", details.Element(Maml + "description")!.Element(Maml + "para")!.Value);
            Assert.Equal(
                new[] { "The **Get-FakeThing** cmdlet reads things by name or by id. Wildcards are allowed in names.", "It never changes the store.", "- a list item", "- another list item" },
                get.Element(Maml + "description")!.Elements(Maml + "para").Select(p => p.Value).ToArray());

            // One syntaxItem per parameter set, the default (Name) first, each with only its set's parameters.
            XElement[] items = get.Element(Command + "syntax")!.Elements(Command + "syntaxItem").ToArray();
            Assert.Equal(2, items.Length);
            Assert.All(items, i => Assert.Equal("Get-FakeThing", i.Element(Maml + "name")!.Value));
            Assert.Equal(new[] { "Name", "Store" }, SyntaxParameterNames(items[0]));
            Assert.Equal(new[] { "Id", "Store" }, SyntaxParameterNames(items[1]));
            XElement id = items[1].Elements(Command + "parameter").First();
            Assert.Equal("true", id.Attribute("required")!.Value);
            Assert.Equal("named", id.Attribute("position")!.Value);
            Assert.Equal("Int32", id.Element(Command + "parameterValue")!.Value);

            XElement name = get.Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "Name");
            Assert.Equal("true", name.Attribute("globbing")!.Value);
            Assert.Equal("True (ByValue)", name.Attribute("pipelineInput")!.Value);
            Assert.Equal("0", name.Attribute("position")!.Value);
            Assert.Equal("ThingName", name.Attribute("aliases")!.Value);
            Assert.Equal("String[]", name.Element(Dev + "type")!.Element(Maml + "name")!.Value);
            Assert.Equal(3, get.Element(Command + "parameters")!.Elements(Command + "parameter").Count());

            Assert.Equal("System.String[]", get.Element(Command + "inputTypes")!.Element(Command + "inputType")!.Element(Dev + "type")!.Element(Maml + "name")!.Value);
            Assert.Equal("FakeGuard.FakeThing", get.Element(Command + "returnValues")!.Element(Command + "returnValue")!.Element(Dev + "type")!.Element(Maml + "name")!.Value);
            Assert.Equal("A note & a <tag> that must be escaped.", get.Element(Maml + "alertSet")!.Element(Maml + "alert")!.Element(Maml + "para")!.Value);

            XElement[] examples = get.Element(Command + "examples")!.Elements(Command + "example").ToArray();
            Assert.Equal(2, examples.Length);
            Assert.Contains("Example 1: Get every thing", examples[0].Element(Maml + "title")!.Value);
            Assert.Equal("PS> Get-FakeThing -Store ./store", examples[0].Element(Dev + "code")!.Value);
            Assert.Equal("PS> Get-FakeThing -Id 7 |\n    Format-List", examples[1].Element(Dev + "code")!.Value);
            Assert.Equal(new[] { "Gets thing 7 and shows it as a list. The output is a FakeThing." },
                examples[1].Element(Dev + "remarks")!.Elements(Maml + "para").Select(p => p.Value).ToArray());

            XElement[] links = get.Element(Command + "relatedLinks")!.Elements(Maml + "navigationLink").ToArray();
            Assert.Equal("Online Version:", links[0].Element(Maml + "linkText")!.Value);
            Assert.Equal("https://example.invalid/fakeguard/Get-FakeThing", links[0].Element(Maml + "uri")!.Value);
            Assert.Equal("Set-FakeThing", links[1].Element(Maml + "linkText")!.Value);
            Assert.Equal(string.Empty, links[1].Element(Maml + "uri")!.Value);
        }

        [Fact]
        public void Switches_have_no_value_in_syntax_and_accepted_values_become_a_value_group()
        {
            using var temp = new TempDir();
            HelpBuilder.Build(FixtureDocs, temp.Path);
            XElement check = CommandElement(LoadStrict(temp.Combine("FakeGuard-Help.xml")), "Invoke-FakeCheck");
            XElement item = Assert.Single(check.Element(Command + "syntax")!.Elements(Command + "syntaxItem"));
            Assert.Equal(new[] { "Store", "OutputFormat", "PassThru", "WhatIf", "Confirm" }, SyntaxParameterNames(item));
            XElement passThru = item.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "PassThru");
            Assert.Null(passThru.Element(Command + "parameterValue"));
            XElement format = item.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "OutputFormat");
            Assert.Equal(new[] { "Json", "JUnit" }, format.Element(Command + "parameterValueGroup")!.Elements(Command + "parameterValue").Select(v => v.Value).ToArray());
            XElement passThruFull = check.Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "PassThru");
            Assert.Equal("SwitchParameter", passThruFull.Element(Command + "parameterValue")!.Value);
        }

        [Fact]
        public void About_topic_becomes_wrapped_help_text()
        {
            using var temp = new TempDir();
            HelpBuilder.Build(FixtureDocs, temp.Path);
            string[] lines = File.ReadAllText(temp.Combine("about_FakeGuard.help.txt")).Split('\n');
            Assert.Equal("TOPIC", lines[0]);
            Assert.Equal("    about_fakeguard", lines[1]);
            Assert.Contains("SHORT DESCRIPTION", lines);
            Assert.Contains("LONG DESCRIPTION", lines);
            Assert.Contains("        Copy-Item ./store ./store.bak -Recurse", lines);
            Assert.All(lines, l => Assert.True(l.Length <= 80, $"line longer than 80 columns: '{l}'"));
            Assert.Contains(lines, l => l.StartsWith("       that nothing is lost.", StringComparison.Ordinal));
        }

        private const string GoodPage = @"---
external help file: X.dll-Help.xml
Module Name: X
schema: 2.0.0
---

# Get-Widget

## SYNOPSIS
Gets widgets.

## SYNTAX

```
Get-Widget [-Name <String>] [<CommonParameters>]
```

## DESCRIPTION
Text.

## EXAMPLES

### Example 1
```powershell
Get-Widget
```

## PARAMETERS

### -Name
The name.

```yaml
Type: String
Parameter Sets: (All)
Aliases:

Required: False
Position: Named
Default value: None
Accept pipeline input: False
Accept wildcard characters: False
```

### CommonParameters
Common.
";

        public static IEnumerable<object[]> Malformed()
        {
            // (case, edit of the good page, expected line, words of the message)
            yield return new object[] { "no front matter", (Func<string, string>)(p => p.Substring(p.IndexOf("# Get-Widget", StringComparison.Ordinal))), 1, "front matter" };
            yield return new object[] { "front matter never closed", (Func<string, string>)(p => p.Replace("schema: 2.0.0\n---", "schema: 2.0.0")), 1, "never closed" };
            yield return new object[] { "no external help file", (Func<string, string>)(p => p.Replace("external help file: X.dll-Help.xml\n", string.Empty)), 1, "external help file" };
            yield return new object[] { "unclosed code fence", (Func<string, string>)(p => p.Replace("```powershell\nGet-Widget\n```", "```powershell\nGet-Widget\n")), 24, "never closed" };
            yield return new object[] { "yaml line without a colon", (Func<string, string>)(p => p.Replace("Aliases:\n", "Aliases\n")), 36, "not 'Key: value'" };
            yield return new object[] { "Required not a boolean", (Func<string, string>)(p => p.Replace("Required: False", "Required: Maybe")), 38, "True or False" };
            yield return new object[] { "bad position", (Func<string, string>)(p => p.Replace("Position: Named", "Position: first")), 39, "Position" };
            yield return new object[] { "unknown yaml key", (Func<string, string>)(p => p.Replace("Aliases:\n", "Alias: n\n")), 36, "unknown parameter metadata key 'Alias'" };
            yield return new object[] { "example without code", (Func<string, string>)(p => p.Replace("```powershell\nGet-Widget\n```", "Just words.")), 23, "has no code block" };
            yield return new object[] { "unknown section", (Func<string, string>)(p => p.Replace("## DESCRIPTION", "## DESCRIPTON")), 18, "unknown section" };
            yield return new object[] { "syntax names an undocumented parameter", (Func<string, string>)(p => p.Replace("Get-Widget [-Name <String>]", "Get-Widget [-Name <String>] [-Force]")), 14, "-Force" };
            yield return new object[] { "parameter without yaml", (Func<string, string>)(p => p.Replace("```yaml", "```text")), 30, "no ```yaml" };
            yield return new object[] { "no synopsis", (Func<string, string>)(p => p.Replace("Gets widgets.\n", string.Empty)), 9, "SYNOPSIS" };
            yield return new object[] { "PlatyPS placeholder left in", (Func<string, string>)(p => p.Replace("Text.\n", "{{ Fill in the Description }}\n")), 19, "placeholder" };
            yield return new object[] { "title differs from the file name", (Func<string, string>)(p => p.Replace("# Get-Widget", "# Get-Gadget")), 7, "Get-Gadget" };
        }

        [Theory]
        [MemberData(nameof(Malformed))]
        public void Malformed_markdown_names_the_file_and_line_and_writes_nothing(string name, Func<string, string> breakIt, int line, string words)
        {
            using var temp = new TempDir();
            string docs = temp.Combine("docs");
            Directory.CreateDirectory(docs);
            File.WriteAllText(Path.Combine(docs, "Get-Widget.md"), GoodPage.Replace("\r\n", "\n"));
            HelpBuilder.Build(docs, temp.Combine("ok"));
            Assert.True(File.Exists(temp.Combine("ok", "X.dll-Help.xml")), "the unbroken page must build");

            string page = Path.Combine(docs, "Get-Widget.md");
            File.WriteAllText(page, breakIt(GoodPage.Replace("\r\n", "\n")));
            string outDir = temp.Combine("out");
            HelpFormatException e = Assert.Throws<HelpFormatException>(() => HelpBuilder.Build(docs, outDir));
            Assert.True(e.File == page && e.Line == line && e.Problem.Contains(words, StringComparison.Ordinal),
                $"{name}: got '{e.Message}', expected line {line} and '{words}'");
            Assert.StartsWith($"{page}:{line}: ", e.Message);
            Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir).Any(), "nothing is written when a page is bad");
        }

        [Fact]
        public void About_topic_without_short_description_is_an_error()
        {
            using var temp = new TempDir();
            string file = temp.Combine("about_X.md");
            File.WriteAllText(file, "# about_X\n\n## LONG DESCRIPTION\nText.\n");
            HelpFormatException e = Assert.Throws<HelpFormatException>(() => PlatyPsMarkdown.ParseAboutFile(file));
            Assert.Contains("SHORT DESCRIPTION", e.Message);
            Assert.Equal(file, e.File);
        }

        [Fact]
        public void Helpgen_command_exits_1_with_file_and_line_on_stderr()
        {
            using var temp = new TempDir();
            string docs = temp.Combine("docs");
            Directory.CreateDirectory(docs);
            File.WriteAllText(Path.Combine(docs, "Get-Widget.md"), GoodPage.Replace("\r\n", "\n").Replace("Required: False", "Required: Maybe"));
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "BmadGuard.HelpGen.dll"));
            foreach (string a in new[] { "help", "--docs", docs, "--out", temp.Combine("out") })
            {
                psi.ArgumentList.Add(a);
            }

            using Process p = Process.Start(psi)!;
            string stderr = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(60_000));
            Assert.Equal(1, p.ExitCode);
            Assert.Contains(Path.Combine(docs, "Get-Widget.md") + ":38: 'Required: Maybe' must be True or False", stderr);
        }
    }
}

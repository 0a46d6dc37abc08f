using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Reads PlatyPS markdown (schema 2.0.0): YAML front matter, <c># Name</c>, then the <c>## SYNOPSIS</c>,
    /// <c>SYNTAX</c>, <c>DESCRIPTION</c>, <c>EXAMPLES</c>, <c>PARAMETERS</c>, <c>INPUTS</c>, <c>OUTPUTS</c>,
    /// <c>NOTES</c> and <c>RELATED LINKS</c> sections. Anything it cannot read is a <see cref="HelpFormatException"/>
    /// naming the file and line, never a silently dropped section.
    /// </summary>
    public static class PlatyPsMarkdown
    {
        private static readonly string[] KnownSections =
        {
            "SYNOPSIS", "SYNTAX", "DESCRIPTION", "EXAMPLES", "PARAMETERS", "INPUTS", "OUTPUTS", "NOTES", "RELATED LINKS",
        };

        private static readonly Regex LinkPattern = new Regex(@"^\[(?<text>[^\]]*)\]\((?<uri>[^)]*)\)\s*$", RegexOptions.Compiled);
        private static readonly Regex SyntaxParameter = new Regex(@"(?<=[\s\[])-(?<name>[A-Za-z_][A-Za-z0-9_]*)", RegexOptions.Compiled);

        internal enum BlockKind
        {
            Heading,
            Code,
            Text,
            Blank,
        }

        internal sealed class Block
        {
            public BlockKind Kind;
            public int Line;
            public int Level;
            public string Text = string.Empty;
            public string Info = string.Empty;
        }

        /// <summary>True when the file is an about topic (<c>about_*.md</c>).</summary>
        public static bool IsAboutTopic(string path) =>
            Path.GetFileName(path).StartsWith("about_", StringComparison.OrdinalIgnoreCase);

        public static CommandHelp ParseCommandFile(string path) => ParseCommand(File.ReadAllText(path), path);

        public static AboutTopic ParseAboutFile(string path) => ParseAbout(File.ReadAllText(path), path);

        public static CommandHelp ParseCommand(string markdown, string file)
        {
            string[] lines = SplitLines(markdown);
            int bodyStart;
            Dictionary<string, string> front = ReadFrontMatter(lines, file, required: true, out bodyStart);
            List<Block> blocks = Tokenize(lines, bodyStart, file);

            int i = SkipBlank(blocks, 0);
            if (i >= blocks.Count || blocks[i].Kind != BlockKind.Heading || blocks[i].Level != 1)
            {
                int line = i < blocks.Count ? blocks[i].Line : lines.Length;
                throw new HelpFormatException(file, line, "expected the command name as a '# Verb-Noun' heading");
            }

            var help = new CommandHelp(file, blocks[i].Text.Trim());
            if (!Regex.IsMatch(help.Name, @"^[A-Za-z]+-[A-Za-z0-9]+$"))
            {
                throw new HelpFormatException(file, blocks[i].Line, $"'{help.Name}' is not a Verb-Noun command name");
            }

            string expectedName = Path.GetFileNameWithoutExtension(file);
            if (!string.Equals(expectedName, help.Name, StringComparison.OrdinalIgnoreCase))
            {
                throw new HelpFormatException(file, blocks[i].Line, $"the page documents '{help.Name}' but is named '{Path.GetFileName(file)}'");
            }

            if (!front.TryGetValue("external help file", out string? helpFile) || helpFile.Length == 0)
            {
                throw new HelpFormatException(file, 1, "the front matter has no 'external help file:' (e.g. BmadGuard.dll-Help.xml)");
            }

            help.ExternalHelpFile = helpFile;
            if (front.TryGetValue("online version", out string? online) && online.Length > 0)
            {
                help.OnlineVersion = online;
            }

            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var sectionLines = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            i++;
            while (i < blocks.Count)
            {
                Block b = blocks[i];
                if (b.Kind == BlockKind.Blank)
                {
                    i++;
                    continue;
                }

                if (b.Kind != BlockKind.Heading || b.Level != 2)
                {
                    throw new HelpFormatException(file, b.Line, "expected a '## SECTION' heading (SYNOPSIS, SYNTAX, DESCRIPTION, EXAMPLES, PARAMETERS, INPUTS, OUTPUTS, NOTES, RELATED LINKS)");
                }

                string section = b.Text.Trim().ToUpperInvariant();
                if (Array.IndexOf(KnownSections, section) < 0)
                {
                    throw new HelpFormatException(file, b.Line, $"unknown section '## {b.Text.Trim()}'");
                }

                if (!seen.Add(section))
                {
                    throw new HelpFormatException(file, b.Line, $"section '## {section}' appears twice");
                }

                sectionLines[section] = b.Line;

                int end = i + 1;
                while (end < blocks.Count && !(blocks[end].Kind == BlockKind.Heading && blocks[end].Level <= 2))
                {
                    end++;
                }

                List<Block> body = blocks.GetRange(i + 1, end - i - 1);
                switch (section)
                {
                    case "SYNOPSIS":
                        help.Synopsis.AddRange(Paragraphs(body, file, allowSubHeadings: false));
                        break;
                    case "DESCRIPTION":
                        help.Description.AddRange(Paragraphs(body, file, allowSubHeadings: true));
                        break;
                    case "NOTES":
                        help.Notes.AddRange(Paragraphs(body, file, allowSubHeadings: true));
                        break;
                    case "SYNTAX":
                        ReadSyntax(help, body, file);
                        break;
                    case "EXAMPLES":
                        ReadExamples(help, body, file);
                        break;
                    case "PARAMETERS":
                        ReadParameters(help, body, file);
                        break;
                    case "INPUTS":
                        ReadTypes(help.Inputs, body, file, "INPUTS");
                        break;
                    case "OUTPUTS":
                        ReadTypes(help.Outputs, body, file, "OUTPUTS");
                        break;
                    case "RELATED LINKS":
                        ReadLinks(help, body, file);
                        break;
                }

                i = end;
            }

            if (help.Synopsis.Count == 0)
            {
                int at = sectionLines.TryGetValue("SYNOPSIS", out int l) ? l : 1;
                throw new HelpFormatException(file, at, "the page has no '## SYNOPSIS' text");
            }

            if (help.Syntax.Count == 0)
            {
                int at = sectionLines.TryGetValue("SYNTAX", out int l) ? l : 1;
                throw new HelpFormatException(file, at, "the page has no '## SYNTAX' code block");
            }

            CheckSyntaxAgainstParameters(help, file);
            return help;
        }

        public static AboutTopic ParseAbout(string markdown, string file)
        {
            string[] lines = SplitLines(markdown);
            ReadFrontMatter(lines, file, required: false, out int bodyStart);
            List<Block> blocks = Tokenize(lines, bodyStart, file);
            int i = SkipBlank(blocks, 0);
            if (i >= blocks.Count || blocks[i].Kind != BlockKind.Heading || blocks[i].Level != 1)
            {
                int line = i < blocks.Count ? blocks[i].Line : lines.Length;
                throw new HelpFormatException(file, line, "expected the topic name as a '# about_Name' heading");
            }

            string name = blocks[i].Text.Trim();
            string expected = Path.GetFileNameWithoutExtension(file);
            if (!string.Equals(name, expected, StringComparison.OrdinalIgnoreCase))
            {
                throw new HelpFormatException(file, blocks[i].Line, $"the topic is titled '{name}' but the file is '{Path.GetFileName(file)}'");
            }

            var topic = new AboutTopic(file, name);
            i++;
            AboutSection? current = null;
            var pending = new List<Block>();
            void Flush()
            {
                if (current == null)
                {
                    Block? stray = pending.FirstOrDefault(p => p.Kind != BlockKind.Blank);
                    if (stray != null)
                    {
                        throw new HelpFormatException(file, stray.Line, "text before the first '## SHORT DESCRIPTION' heading");
                    }
                }
                else
                {
                    foreach (Block p in GroupParagraphs(pending))
                    {
                        current.Blocks.Add((p.Text, p.Kind == BlockKind.Code));
                    }
                }

                pending.Clear();
            }

            for (; i < blocks.Count; i++)
            {
                Block b = blocks[i];
                if (b.Kind == BlockKind.Heading)
                {
                    if (b.Level == 1)
                    {
                        throw new HelpFormatException(file, b.Line, "a second '#' title; use '##' for sections");
                    }

                    Flush();
                    current = new AboutSection(b.Level, b.Text.Trim());
                    topic.Sections.Add(current);
                }
                else
                {
                    pending.Add(b);
                }
            }

            Flush();
            if (!topic.Sections.Any(s => s.Level == 2 && s.Heading.Equals("SHORT DESCRIPTION", StringComparison.OrdinalIgnoreCase)))
            {
                throw new HelpFormatException(file, lines.Length, "an about topic needs a '## SHORT DESCRIPTION' section");
            }

            return topic;
        }

        /// <summary>The parameter names in order of first appearance in a syntax block.</summary>
        public static List<string> SyntaxParameterNames(string syntaxText)
        {
            var names = new List<string>();
            foreach (Match m in SyntaxParameter.Matches(" " + syntaxText))
            {
                string n = m.Groups["name"].Value;
                if (!names.Contains(n, StringComparer.OrdinalIgnoreCase))
                {
                    names.Add(n);
                }
            }

            return names;
        }

        private static string[] SplitLines(string text)
        {
            if (text.Length > 0 && text[0] == '\uFEFF')
            {
                text = text.Substring(1);
            }

            return text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n');
        }

        private static Dictionary<string, string> ReadFrontMatter(string[] lines, string file, bool required, out int bodyStart)
        {
            var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            bodyStart = 0;
            if (lines.Length == 0 || lines[0].Trim() != "---")
            {
                if (required)
                {
                    throw new HelpFormatException(file, 1, "expected YAML front matter: a first line '---', then 'external help file: ...', then '---'");
                }

                return values;
            }

            for (int i = 1; i < lines.Length; i++)
            {
                string line = lines[i];
                if (line.Trim() == "---")
                {
                    bodyStart = i + 1;
                    return values;
                }

                if (line.Trim().Length == 0)
                {
                    continue;
                }

                if (line.TrimStart().StartsWith("#", StringComparison.Ordinal))
                {
                    throw new HelpFormatException(file, 1, $"the front matter opened with '---' is never closed: line {i + 1} is markdown ('{line.Trim()}')");
                }

                int colon = line.IndexOf(':');
                if (colon <= 0)
                {
                    throw new HelpFormatException(file, i + 1, $"front matter line is not 'key: value': '{line}'");
                }

                values[line.Substring(0, colon).Trim()] = line.Substring(colon + 1).Trim();
            }

            throw new HelpFormatException(file, 1, "the front matter opened with '---' is never closed by a second '---'");
        }

        private static readonly Regex Placeholder = new Regex(@"\{\{.*?\}\}", RegexOptions.Compiled);

        private static List<Block> Tokenize(string[] lines, int start, string file)
        {
            // PlatyPS's New-MarkdownHelp leaves '{{ Fill in the Description }}' where a person must write.
            for (int k = start; k < lines.Length; k++)
            {
                Match placeholder = Placeholder.Match(lines[k]);
                if (placeholder.Success)
                {
                    throw new HelpFormatException(file, k + 1, $"PlatyPS placeholder left in the page: '{placeholder.Value}'");
                }
            }

            var blocks = new List<Block>();
            for (int i = start; i < lines.Length; i++)
            {
                string line = lines[i];
                string trimmed = line.TrimStart();
                if (trimmed.StartsWith("```", StringComparison.Ordinal) || trimmed.StartsWith("~~~", StringComparison.Ordinal))
                {
                    string fence = trimmed.Substring(0, 3);
                    int open = i;
                    var code = new StringBuilder();
                    bool closed = false;
                    for (i++; i < lines.Length; i++)
                    {
                        // A fence with a language inside a block means this block was never closed (markdown would
                        // silently swallow the rest of the page into it).
                        string inner = lines[i].TrimStart();
                        if (inner.StartsWith(fence, StringComparison.Ordinal) && inner.Trim().Length > 3 && char.IsLetter(inner.Trim()[3]))
                        {
                            throw new HelpFormatException(file, open + 1, $"the code block opened here with {fence} is never closed (line {i + 1} opens another)");
                        }

                        if (lines[i].Trim() == fence || (lines[i].TrimStart().StartsWith(fence, StringComparison.Ordinal) && lines[i].Trim().Trim(fence[0]).Length == 0))
                        {
                            closed = true;
                            break;
                        }

                        if (code.Length > 0)
                        {
                            code.Append('\n');
                        }

                        code.Append(lines[i]);
                    }

                    if (!closed)
                    {
                        throw new HelpFormatException(file, open + 1, $"the code block opened here with {fence} is never closed");
                    }

                    blocks.Add(new Block { Kind = BlockKind.Code, Line = open + 1, Text = code.ToString(), Info = trimmed.Substring(3).Trim() });
                    continue;
                }

                if (trimmed.StartsWith("#", StringComparison.Ordinal))
                {
                    int level = 0;
                    while (level < trimmed.Length && trimmed[level] == '#')
                    {
                        level++;
                    }

                    if (level <= 6 && (level == trimmed.Length || trimmed[level] == ' '))
                    {
                        blocks.Add(new Block { Kind = BlockKind.Heading, Line = i + 1, Level = level, Text = trimmed.Substring(level).Trim().TrimEnd('#').Trim() });
                        continue;
                    }
                }

                blocks.Add(new Block { Kind = trimmed.Length == 0 ? BlockKind.Blank : BlockKind.Text, Line = i + 1, Text = line.TrimEnd() });
            }

            return blocks;
        }

        private static int SkipBlank(List<Block> blocks, int i)
        {
            while (i < blocks.Count && blocks[i].Kind == BlockKind.Blank)
            {
                i++;
            }

            return i;
        }

        private static bool IsListItem(string text) => Regex.IsMatch(text, @"^\s*([-*+]|\d+[.)])\s+");

        /// <summary>Joins text lines into paragraphs (a blank line or a list item starts a new one); code stays whole.</summary>
        private static IEnumerable<Block> GroupParagraphs(List<Block> body)
        {
            StringBuilder? para = null;
            int paraLine = 0;
            foreach (Block b in body)
            {
                if (b.Kind == BlockKind.Text && para != null && !IsListItem(b.Text))
                {
                    para.Append(' ').Append(b.Text.Trim());
                    continue;
                }

                if (para != null)
                {
                    yield return new Block { Kind = BlockKind.Text, Line = paraLine, Text = para.ToString() };
                    para = null;
                }

                if (b.Kind == BlockKind.Text)
                {
                    para = new StringBuilder(IsListItem(b.Text) ? b.Text.TrimEnd() : b.Text.Trim());
                    paraLine = b.Line;
                }
                else if (b.Kind == BlockKind.Code || b.Kind == BlockKind.Heading)
                {
                    yield return b;
                }
            }

            if (para != null)
            {
                yield return new Block { Kind = BlockKind.Text, Line = paraLine, Text = para.ToString() };
            }
        }

        private static List<string> Paragraphs(List<Block> body, string file, bool allowSubHeadings)
        {
            var result = new List<string>();
            foreach (Block p in GroupParagraphs(body))
            {
                if (p.Kind == BlockKind.Heading)
                {
                    if (!allowSubHeadings)
                    {
                        throw new HelpFormatException(file, p.Line, $"unexpected heading '{p.Text}' in this section");
                    }

                    result.Add(p.Text.ToUpperInvariant());
                    continue;
                }

                result.Add(p.Text);
            }

            return result;
        }

        /// <summary>Splits a section body at its <c>###</c> headings; text before the first one is an error.</summary>
        private static List<(Block Heading, List<Block> Body)> SubSections(List<Block> body, string file, string section)
        {
            var result = new List<(Block, List<Block>)>();
            foreach (Block b in body)
            {
                if (b.Kind == BlockKind.Heading)
                {
                    if (b.Level != 3)
                    {
                        throw new HelpFormatException(file, b.Line, $"in ## {section}, expected a '###' heading, found level {b.Level}");
                    }

                    result.Add((b, new List<Block>()));
                }
                else if (result.Count == 0)
                {
                    if (b.Kind != BlockKind.Blank)
                    {
                        throw new HelpFormatException(file, b.Line, $"in ## {section}, text before the first '###' heading");
                    }
                }
                else
                {
                    result[result.Count - 1].Item2.Add(b);
                }
            }

            return result;
        }

        private static void ReadSyntax(CommandHelp help, List<Block> body, string file)
        {
            bool hasHeadings = body.Any(b => b.Kind == BlockKind.Heading);
            if (!hasHeadings)
            {
                List<Block> codes = body.Where(b => b.Kind == BlockKind.Code).ToList();
                Block? text = body.FirstOrDefault(b => b.Kind == BlockKind.Text);
                if (text != null)
                {
                    throw new HelpFormatException(file, text.Line, "## SYNTAX holds only code blocks (one per '### ParameterSet' heading)");
                }

                if (codes.Count != 1)
                {
                    int line = codes.Count > 1 ? codes[1].Line : (body.Count > 0 ? body[0].Line : 1);
                    throw new HelpFormatException(file, line, "## SYNTAX without '### SetName' headings must have exactly one code block");
                }

                help.Syntax.Add(new SyntaxHelp(SyntaxHelp.AllParameterSets, true, codes[0].Text.Trim(), codes[0].Line));
                return;
            }

            foreach ((Block heading, List<Block> sub) in SubSections(body, file, "SYNTAX"))
            {
                List<Block> codes = sub.Where(b => b.Kind == BlockKind.Code).ToList();
                if (codes.Count != 1)
                {
                    throw new HelpFormatException(file, heading.Line, $"syntax '### {heading.Text}' must be followed by exactly one code block");
                }

                string name = heading.Text.Trim();
                bool isDefault = false;
                Match m = Regex.Match(name, @"^(?<set>.+?)\s*\(Default\)$", RegexOptions.IgnoreCase);
                if (m.Success)
                {
                    name = m.Groups["set"].Value;
                    isDefault = true;
                }

                if (help.Syntax.Any(s => s.SetName.Equals(name, StringComparison.OrdinalIgnoreCase)))
                {
                    throw new HelpFormatException(file, heading.Line, $"parameter set '{name}' has two syntax blocks");
                }

                help.Syntax.Add(new SyntaxHelp(name, isDefault, codes[0].Text.Trim(), codes[0].Line));
            }
        }

        private static void ReadExamples(CommandHelp help, List<Block> body, string file)
        {
            foreach ((Block heading, List<Block> sub) in SubSections(body, file, "EXAMPLES"))
            {
                var example = new ExampleHelp(heading.Text.Trim());
                foreach (Block p in GroupParagraphs(sub))
                {
                    if (p.Kind == BlockKind.Code)
                    {
                        example.Code.Add(p.Text);
                    }
                    else
                    {
                        example.Remarks.Add(p.Text);
                    }
                }

                if (example.Code.Count == 0)
                {
                    throw new HelpFormatException(file, heading.Line, $"example '{example.Title}' has no code block");
                }

                help.Examples.Add(example);
            }
        }

        private static void ReadParameters(CommandHelp help, List<Block> body, string file)
        {
            foreach ((Block heading, List<Block> sub) in SubSections(body, file, "PARAMETERS"))
            {
                string title = heading.Text.Trim();
                if (title.Equals("CommonParameters", StringComparison.OrdinalIgnoreCase))
                {
                    help.SupportsCommonParameters = true;
                    continue;
                }

                if (!Regex.IsMatch(title, @"^-[A-Za-z_][A-Za-z0-9_]*$"))
                {
                    throw new HelpFormatException(file, heading.Line, $"parameter heading '### {title}' is not '### -Name' or '### CommonParameters'");
                }

                var parameter = new ParameterHelp(title.Substring(1), heading.Line);
                if (help.Parameters.Any(p => p.Name.Equals(parameter.Name, StringComparison.OrdinalIgnoreCase)))
                {
                    throw new HelpFormatException(file, heading.Line, $"parameter -{parameter.Name} is documented twice");
                }

                foreach (Block p in GroupParagraphs(sub))
                {
                    if (p.Kind == BlockKind.Code && p.Info.Equals("yaml", StringComparison.OrdinalIgnoreCase))
                    {
                        parameter.Metadata.Add(ReadParameterYaml(p, file));
                    }
                    else if (parameter.Metadata.Count == 0)
                    {
                        parameter.Description.Add(p.Text);
                    }
                    else if (p.Kind == BlockKind.Code)
                    {
                        throw new HelpFormatException(file, p.Line, $"parameter -{parameter.Name}: a code block after the ```yaml metadata must itself be ```yaml");
                    }
                    else
                    {
                        throw new HelpFormatException(file, p.Line, $"parameter -{parameter.Name}: text after the ```yaml metadata; put the description before it");
                    }
                }

                if (parameter.Metadata.Count == 0)
                {
                    throw new HelpFormatException(file, heading.Line, $"parameter -{parameter.Name} has no ```yaml metadata block (Type, Parameter Sets, Required, Position, ...)");
                }

                help.Parameters.Add(parameter);
            }
        }

        private static ParameterMetadata ReadParameterYaml(Block code, string file)
        {
            var meta = new ParameterMetadata { Line = code.Line };
            string[] yamlLines = code.Text.Split('\n');
            for (int k = 0; k < yamlLines.Length; k++)
            {
                string line = yamlLines[k];
                int lineNo = code.Line + 1 + k;
                if (line.Trim().Length == 0)
                {
                    continue;
                }

                int colon = line.IndexOf(':');
                if (colon <= 0)
                {
                    throw new HelpFormatException(file, lineNo, $"parameter metadata line is not 'Key: value': '{line.Trim()}'");
                }

                string key = line.Substring(0, colon).Trim();
                string value = line.Substring(colon + 1).Trim();
                switch (key.ToLowerInvariant())
                {
                    case "type":
                        if (value.Length == 0)
                        {
                            throw new HelpFormatException(file, lineNo, "'Type:' is empty");
                        }

                        meta.Type = value;
                        break;
                    case "parameter sets":
                        meta.ParameterSets.AddRange(SplitList(value));
                        break;
                    case "aliases":
                        meta.Aliases.AddRange(SplitList(value));
                        break;
                    case "accepted values":
                        meta.AcceptedValues.AddRange(SplitList(value));
                        break;
                    case "required":
                        meta.Required = ParseBool(value, file, lineNo, key);
                        break;
                    case "accept wildcard characters":
                        meta.Globbing = ParseBool(value, file, lineNo, key);
                        break;
                    case "position":
                        if (!value.Equals("Named", StringComparison.OrdinalIgnoreCase) && !Regex.IsMatch(value, @"^\d+$"))
                        {
                            throw new HelpFormatException(file, lineNo, $"'Position: {value}' must be 'Named' or a number");
                        }

                        meta.Position = value.Equals("Named", StringComparison.OrdinalIgnoreCase) ? "Named" : value;
                        break;
                    case "default value":
                        meta.DefaultValue = value.Length == 0 ? "None" : value;
                        break;
                    case "accept pipeline input":
                        if (!Regex.IsMatch(value, @"^(False|True(\s*\((ByValue|ByPropertyName)(,\s*(ByValue|ByPropertyName))?\))?)$", RegexOptions.IgnoreCase))
                        {
                            throw new HelpFormatException(file, lineNo, $"'Accept pipeline input: {value}' must be False, True (ByValue), True (ByPropertyName) or True (ByPropertyName, ByValue)");
                        }

                        meta.PipelineInput = value;
                        break;
                    case "applicable":
                    case "dynamic":
                        break;
                    default:
                        throw new HelpFormatException(file, lineNo, $"unknown parameter metadata key '{key}'");
                }
            }

            return meta;
        }

        private static IEnumerable<string> SplitList(string value) =>
            value.Split(',').Select(s => s.Trim()).Where(s => s.Length > 0);

        private static bool ParseBool(string value, string file, int line, string key)
        {
            if (value.Equals("True", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }

            if (value.Equals("False", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            throw new HelpFormatException(file, line, $"'{key}: {value}' must be True or False");
        }

        private static void ReadTypes(List<TypeHelp> target, List<Block> body, string file, string section)
        {
            foreach ((Block heading, List<Block> sub) in SubSections(body, file, section))
            {
                var t = new TypeHelp(heading.Text.Trim());
                foreach (Block p in GroupParagraphs(sub))
                {
                    t.Description.Add(p.Text);
                }

                target.Add(t);
            }
        }

        private static void ReadLinks(CommandHelp help, List<Block> body, string file)
        {
            if (help.OnlineVersion != null)
            {
                help.Links.Add(new LinkHelp("Online Version:", help.OnlineVersion));
            }

            foreach (Block b in body)
            {
                if (b.Kind == BlockKind.Blank)
                {
                    continue;
                }

                if (b.Kind != BlockKind.Text)
                {
                    throw new HelpFormatException(file, b.Line, "## RELATED LINKS holds only '[text](uri)' lines");
                }

                Match m = LinkPattern.Match(b.Text.Trim());
                if (m.Success)
                {
                    string uri = m.Groups["uri"].Value.Trim();
                    // Links to other pages (Get-X.md) are shown by name; only absolute URIs go into maml:uri.
                    bool absolute = Uri.TryCreate(uri, UriKind.Absolute, out Uri? parsed) && (parsed.Scheme == "http" || parsed.Scheme == "https");
                    help.Links.Add(new LinkHelp(m.Groups["text"].Value.Trim(), absolute ? uri : string.Empty));
                }
                else
                {
                    help.Links.Add(new LinkHelp(b.Text.Trim(), string.Empty));
                }
            }
        }

        private static void CheckSyntaxAgainstParameters(CommandHelp help, string file)
        {
            var documented = new HashSet<string>(help.Parameters.Select(p => p.Name), StringComparer.OrdinalIgnoreCase);
            foreach (SyntaxHelp s in help.Syntax)
            {
                foreach (string name in SyntaxParameterNames(s.Text))
                {
                    if (!documented.Contains(name))
                    {
                        throw new HelpFormatException(file, s.Line, $"syntax '{s.SetName}' uses -{name}, which ## PARAMETERS does not document");
                    }
                }
            }

            bool named = help.Syntax.Count > 1 || help.Syntax[0].SetName != SyntaxHelp.AllParameterSets;
            if (!named)
            {
                return;
            }

            var sets = new HashSet<string>(help.Syntax.Select(s => s.SetName), StringComparer.OrdinalIgnoreCase);
            foreach (ParameterHelp p in help.Parameters)
            {
                foreach (ParameterMetadata m in p.Metadata)
                {
                    foreach (string set in m.ParameterSets)
                    {
                        if (!set.Equals("(All)", StringComparison.OrdinalIgnoreCase) && !sets.Contains(set))
                        {
                            throw new HelpFormatException(file, m.Line, $"parameter -{p.Name} names parameter set '{set}', which ## SYNTAX has no '### {set}' block for");
                        }
                    }
                }
            }
        }
    }
}

using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Writes an about topic as the plain text Get-Help reads from en-US/about_*.help.txt: a TOPIC header,
    /// section headings in capitals at column 0, text indented four spaces and wrapped at 80 columns, code
    /// indented eight spaces and kept verbatim.
    /// </summary>
    public static class AboutTopicWriter
    {
        private const int Width = 80;

        public static string Render(AboutTopic topic)
        {
            var sb = new StringBuilder();
            sb.Append("TOPIC\n    ").Append(topic.Name.ToLowerInvariant()).Append("\n\n");
            foreach (AboutSection section in topic.Sections)
            {
                if (section.Level == 2)
                {
                    sb.Append(section.Heading.ToUpperInvariant()).Append('\n');
                }
                else
                {
                    sb.Append("    ").Append(section.Heading).Append('\n');
                }

                foreach ((string text, bool isCode) in section.Blocks)
                {
                    if (isCode)
                    {
                        foreach (string line in text.Split('\n'))
                        {
                            sb.Append(line.Length == 0 ? string.Empty : "        " + line).Append('\n');
                        }
                    }
                    else
                    {
                        Wrap(sb, text, "    ");
                    }

                    sb.Append('\n');
                }
            }

            return sb.ToString().TrimEnd('\n') + "\n";
        }

        public static void Write(AboutTopic topic, string path)
        {
            File.WriteAllText(path, Render(topic), new UTF8Encoding(false));
        }

        private static void Wrap(StringBuilder sb, string text, string indent)
        {
            // A list item keeps its marker and hangs its continuation lines under the text.
            string hanging = indent;
            string trimmed = text.TrimStart();
            int markerEnd = 0;
            if (trimmed.StartsWith("- ", StringComparison.Ordinal) || trimmed.StartsWith("* ", StringComparison.Ordinal))
            {
                markerEnd = 2;
            }
            else
            {
                int digits = 0;
                while (digits < trimmed.Length && char.IsDigit(trimmed[digits]))
                {
                    digits++;
                }

                if (digits > 0 && digits + 1 < trimmed.Length && (trimmed[digits] == '.' || trimmed[digits] == ')') && trimmed[digits + 1] == ' ')
                {
                    markerEnd = digits + 2;
                }
            }

            hanging = indent + new string(' ', markerEnd);
            var line = new StringBuilder(indent);
            bool empty = true;
            foreach (string word in trimmed.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries))
            {
                if (!empty && line.Length + 1 + word.Length > Width)
                {
                    sb.Append(line.ToString().TrimEnd()).Append('\n');
                    line.Clear().Append(hanging);
                    empty = true;
                }

                if (!empty)
                {
                    line.Append(' ');
                }

                line.Append(word);
                empty = false;
            }

            if (!empty)
            {
                sb.Append(line.ToString().TrimEnd()).Append('\n');
            }
        }
    }
}

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace BmadGuard.HelpGen
{
    /// <summary>docs/en-US (PlatyPS markdown) → en-US help files, as New-ExternalHelp does.</summary>
    public static class HelpBuilder
    {
        public sealed class Result
        {
            public List<string> Files { get; } = new List<string>();

            public List<CommandHelp> Commands { get; } = new List<CommandHelp>();

            public List<AboutTopic> Topics { get; } = new List<AboutTopic>();
        }

        /// <summary>Reads every *.md page of <paramref name="docsDir"/> (throws on the first bad page).</summary>
        public static (List<CommandHelp> Commands, List<AboutTopic> Topics) ReadDocs(string docsDir)
        {
            if (!Directory.Exists(docsDir))
            {
                throw new DirectoryNotFoundException($"help source folder not found: {docsDir}");
            }

            var commands = new List<CommandHelp>();
            var topics = new List<AboutTopic>();
            foreach (string file in Directory.GetFiles(docsDir, "*.md").OrderBy(f => f, StringComparer.Ordinal))
            {
                if (PlatyPsMarkdown.IsAboutTopic(file))
                {
                    topics.Add(PlatyPsMarkdown.ParseAboutFile(file));
                }
                else
                {
                    commands.Add(PlatyPsMarkdown.ParseCommandFile(file));
                }
            }

            return (commands, topics);
        }

        /// <summary>Writes one MAML file per 'external help file' and one .help.txt per about topic.</summary>
        public static Result Build(string docsDir, string outDir)
        {
            (List<CommandHelp> commands, List<AboutTopic> topics) = ReadDocs(docsDir);
            Directory.CreateDirectory(outDir);
            var result = new Result();
            result.Commands.AddRange(commands);
            result.Topics.AddRange(topics);
            foreach (IGrouping<string, CommandHelp> group in commands.GroupBy(c => c.ExternalHelpFile, StringComparer.OrdinalIgnoreCase))
            {
                string name = Path.GetFileName(group.Key);
                if (name != group.Key || !name.EndsWith("-Help.xml", StringComparison.OrdinalIgnoreCase))
                {
                    CommandHelp first = group.First();
                    throw new HelpFormatException(first.SourceFile, 1, $"'external help file: {group.Key}' must be a file name ending in -Help.xml");
                }

                string path = Path.Combine(outDir, name);
                MamlWriter.Write(group, path);
                result.Files.Add(path);
            }

            foreach (AboutTopic topic in topics)
            {
                string path = Path.Combine(outDir, topic.Name + ".help.txt");
                AboutTopicWriter.Write(topic, path);
                result.Files.Add(path);
            }

            return result;
        }
    }
}

using System;
using System.Collections.Generic;

namespace BmadGuard.HelpGen
{
    /// <summary>One command's help page as PlatyPS (schema 2.0.0) writes it in markdown.</summary>
    public sealed class CommandHelp
    {
        public CommandHelp(string sourceFile, string name)
        {
            SourceFile = sourceFile;
            Name = name;
        }

        public string SourceFile { get; }

        public string Name { get; }

        /// <summary>The front matter's <c>external help file</c>: the MAML file this command's help goes into.</summary>
        public string ExternalHelpFile { get; set; } = string.Empty;

        public string? OnlineVersion { get; set; }

        public List<string> Synopsis { get; } = new List<string>();

        public List<string> Description { get; } = new List<string>();

        public List<SyntaxHelp> Syntax { get; } = new List<SyntaxHelp>();

        public List<ParameterHelp> Parameters { get; } = new List<ParameterHelp>();

        /// <summary>True when the page has a <c>### CommonParameters</c> entry.</summary>
        public bool SupportsCommonParameters { get; set; }

        public List<TypeHelp> Inputs { get; } = new List<TypeHelp>();

        public List<TypeHelp> Outputs { get; } = new List<TypeHelp>();

        public List<ExampleHelp> Examples { get; } = new List<ExampleHelp>();

        public List<string> Notes { get; } = new List<string>();

        public List<LinkHelp> Links { get; } = new List<LinkHelp>();

        public string Verb => Name.Contains("-") ? Name.Substring(0, Name.IndexOf('-')) : Name;

        public string Noun => Name.Contains("-") ? Name.Substring(Name.IndexOf('-') + 1) : string.Empty;
    }

    /// <summary>A parameter set's syntax block (<c>### SetName (Default)</c> + code).</summary>
    public sealed class SyntaxHelp
    {
        public const string AllParameterSets = "__AllParameterSets";

        public SyntaxHelp(string setName, bool isDefault, string text, int line)
        {
            SetName = setName;
            IsDefault = isDefault;
            Text = text;
            Line = line;
        }

        public string SetName { get; }

        public bool IsDefault { get; }

        public string Text { get; }

        public int Line { get; }
    }

    public sealed class ParameterHelp
    {
        public ParameterHelp(string name, int line)
        {
            Name = name;
            Line = line;
        }

        public string Name { get; }

        public int Line { get; }

        public List<string> Description { get; } = new List<string>();

        /// <summary>One entry per ```yaml block; PlatyPS writes several when the metadata differs between sets.</summary>
        public List<ParameterMetadata> Metadata { get; } = new List<ParameterMetadata>();
    }

    public sealed class ParameterMetadata
    {
        public int Line { get; set; }

        public string Type { get; set; } = "Object";

        /// <summary>Parameter set names; <c>(All)</c> means every set.</summary>
        public List<string> ParameterSets { get; } = new List<string>();

        public List<string> Aliases { get; } = new List<string>();

        public bool Required { get; set; }

        /// <summary><c>Named</c> or a 0-based position.</summary>
        public string Position { get; set; } = "Named";

        public string DefaultValue { get; set; } = "None";

        /// <summary>As written: <c>False</c>, <c>True (ByValue)</c>, <c>True (ByPropertyName, ByValue)</c>.</summary>
        public string PipelineInput { get; set; } = "False";

        public bool Globbing { get; set; }

        public List<string> AcceptedValues { get; } = new List<string>();

        public bool AppliesTo(string setName) =>
            ParameterSets.Count == 0
            || ParameterSets.Exists(s => s.Equals("(All)", StringComparison.OrdinalIgnoreCase)
                                         || s.Equals(setName, StringComparison.OrdinalIgnoreCase));

        public bool IsSwitch =>
            Type.Equals("SwitchParameter", StringComparison.OrdinalIgnoreCase)
            || Type.Equals("switch", StringComparison.OrdinalIgnoreCase);
    }

    public sealed class TypeHelp
    {
        public TypeHelp(string typeName)
        {
            TypeName = typeName;
        }

        public string TypeName { get; }

        public List<string> Description { get; } = new List<string>();
    }

    public sealed class ExampleHelp
    {
        public ExampleHelp(string title)
        {
            Title = title;
        }

        public string Title { get; }

        public List<string> Code { get; } = new List<string>();

        public List<string> Remarks { get; } = new List<string>();
    }

    public sealed class LinkHelp
    {
        public LinkHelp(string text, string uri)
        {
            Text = text;
            Uri = uri;
        }

        public string Text { get; }

        public string Uri { get; }
    }

    /// <summary>An about_*.md topic.</summary>
    public sealed class AboutTopic
    {
        public AboutTopic(string sourceFile, string name)
        {
            SourceFile = sourceFile;
            Name = name;
        }

        public string SourceFile { get; }

        public string Name { get; }

        /// <summary>Sections in order: heading level (2 or 3), heading text, body blocks.</summary>
        public List<AboutSection> Sections { get; } = new List<AboutSection>();
    }

    public sealed class AboutSection
    {
        public AboutSection(int level, string heading)
        {
            Level = level;
            Heading = heading;
        }

        public int Level { get; }

        public string Heading { get; }

        /// <summary>Paragraphs (already joined) and code blocks (IsCode).</summary>
        public List<(string Text, bool IsCode)> Blocks { get; } = new List<(string, bool)>();
    }
}

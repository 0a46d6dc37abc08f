using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Writes MAML (the XML that Get-Help reads from en-US/*-Help.xml) in the shape PlatyPS's New-ExternalHelp
    /// produces: one command:command per page with details, description, a syntaxItem per parameter set,
    /// parameters, inputTypes, returnValues, alertSet (notes), examples and relatedLinks.
    /// </summary>
    public static class MamlWriter
    {
        public static readonly XNamespace Msh = "http://msh";
        public static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
        public static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
        public static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
        public static readonly XNamespace MSHelp = "http://msdn.microsoft.com/mshelp";

        public static XDocument Build(IEnumerable<CommandHelp> commands)
        {
            var root = new XElement(Msh + "helpItems", new XAttribute("schema", "maml"));
            foreach (CommandHelp c in commands.OrderBy(c => c.Name, StringComparer.OrdinalIgnoreCase))
            {
                root.Add(BuildCommand(c));
            }

            return new XDocument(new XDeclaration("1.0", "utf-8", null), root);
        }

        public static void Write(IEnumerable<CommandHelp> commands, string path)
        {
            XDocument doc = Build(commands);
            var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = true, IndentChars = "  ", NewLineChars = "\n" };
            string tmp = path + ".tmp";
            using (XmlWriter w = XmlWriter.Create(tmp, settings))
            {
                doc.Save(w);
            }

            File.Move(tmp, path, overwrite: true);
        }

        private static XElement BuildCommand(CommandHelp c)
        {
            var command = new XElement(Command + "command",
                new XAttribute(XNamespace.Xmlns + "maml", Maml),
                new XAttribute(XNamespace.Xmlns + "command", Command),
                new XAttribute(XNamespace.Xmlns + "dev", Dev),
                new XAttribute(XNamespace.Xmlns + "MSHelp", MSHelp));

            command.Add(new XElement(Command + "details",
                new XElement(Command + "name", c.Name),
                new XElement(Command + "verb", c.Verb),
                new XElement(Command + "noun", c.Noun),
                Description(c.Synopsis)));
            command.Add(Description(c.Description));

            var syntax = new XElement(Command + "syntax");
            foreach (SyntaxHelp s in OrderedSyntax(c))
            {
                var item = new XElement(Command + "syntaxItem", new XElement(Maml + "name", c.Name));
                foreach ((ParameterHelp p, ParameterMetadata m) in SyntaxParameters(c, s))
                {
                    item.Add(Parameter(p, m, inSyntax: true));
                }

                syntax.Add(item);
            }

            command.Add(syntax);

            var parameters = new XElement(Command + "parameters");
            foreach (ParameterHelp p in c.Parameters)
            {
                parameters.Add(Parameter(p, p.Metadata[0], inSyntax: false));
            }

            command.Add(parameters);
            command.Add(Types(Command + "inputTypes", Command + "inputType", c.Inputs));
            command.Add(Types(Command + "returnValues", Command + "returnValue", c.Outputs));
            command.Add(new XElement(Maml + "alertSet", new XElement(Maml + "alert", Paras(c.Notes))));

            var examples = new XElement(Command + "examples");
            foreach (ExampleHelp e in c.Examples)
            {
                examples.Add(new XElement(Command + "example",
                    new XElement(Maml + "title", "-------------------------- " + e.Title + " --------------------------"),
                    new XElement(Dev + "code", string.Join("\n\n", e.Code)),
                    new XElement(Dev + "remarks", Paras(e.Remarks))));
            }

            command.Add(examples);

            var links = new XElement(Command + "relatedLinks");
            foreach (LinkHelp l in c.Links)
            {
                links.Add(new XElement(Maml + "navigationLink",
                    new XElement(Maml + "linkText", l.Text),
                    new XElement(Maml + "uri", l.Uri)));
            }

            command.Add(links);
            return command;
        }

        /// <summary>The default parameter set first, as Get-Help shows it.</summary>
        private static IEnumerable<SyntaxHelp> OrderedSyntax(CommandHelp c) =>
            c.Syntax.Where(s => s.IsDefault).Concat(c.Syntax.Where(s => !s.IsDefault));

        /// <summary>
        /// The parameters of one parameter set, in the order the page's syntax block lists them (then any other
        /// parameter of the set in page order), each with the metadata block that applies to that set.
        /// </summary>
        public static List<(ParameterHelp Parameter, ParameterMetadata Metadata)> SyntaxParameters(CommandHelp c, SyntaxHelp s)
        {
            var inSet = new List<(ParameterHelp, ParameterMetadata)>();
            foreach (ParameterHelp p in c.Parameters)
            {
                ParameterMetadata? m = s.SetName == SyntaxHelp.AllParameterSets
                    ? p.Metadata[0]
                    : p.Metadata.FirstOrDefault(x => x.AppliesTo(s.SetName));
                if (m != null)
                {
                    inSet.Add((p, m));
                }
            }

            List<string> order = PlatyPsMarkdown.SyntaxParameterNames(s.Text);
            return inSet
                .Select((x, index) => (x, rank: order.FindIndex(n => n.Equals(x.Item1.Name, StringComparison.OrdinalIgnoreCase)), index))
                .OrderBy(t => t.rank < 0 ? int.MaxValue : t.rank)
                .ThenBy(t => t.index)
                .Select(t => t.x)
                .ToList();
        }

        private static XElement Parameter(ParameterHelp p, ParameterMetadata m, bool inSyntax)
        {
            string type = m.IsSwitch ? "SwitchParameter" : m.Type;
            var e = new XElement(Command + "parameter",
                new XAttribute("required", Lower(m.Required)),
                new XAttribute("variableLength", "true"),
                new XAttribute("globbing", Lower(m.Globbing)),
                new XAttribute("pipelineInput", m.PipelineInput),
                new XAttribute("position", m.Position.ToLowerInvariant()),
                new XAttribute("aliases", m.Aliases.Count > 0 ? string.Join(", ", m.Aliases) : "none"),
                new XElement(Maml + "name", p.Name),
                Description(p.Description));

            if (inSyntax && m.AcceptedValues.Count > 0)
            {
                e.Add(new XElement(Command + "parameterValueGroup",
                    m.AcceptedValues.Select(v => new XElement(Command + "parameterValue",
                        new XAttribute("required", "false"), new XAttribute("variableLength", "false"), v))));
            }

            // In a syntax item a switch has no value (Get-Help shows [-Force], not [-Force <SwitchParameter>]).
            if (!inSyntax || !m.IsSwitch)
            {
                e.Add(new XElement(Command + "parameterValue",
                    new XAttribute("required", Lower(!m.IsSwitch)),
                    new XAttribute("variableLength", "false"),
                    type));
            }

            e.Add(new XElement(Dev + "type", new XElement(Maml + "name", type), new XElement(Maml + "uri")));
            e.Add(new XElement(Dev + "defaultValue", m.DefaultValue));
            return e;
        }

        private static XElement Types(XName list, XName item, List<TypeHelp> types)
        {
            var e = new XElement(list);
            foreach (TypeHelp t in types)
            {
                e.Add(new XElement(item,
                    new XElement(Dev + "type", new XElement(Maml + "name", t.TypeName)),
                    Description(t.Description)));
            }

            return e;
        }

        private static XElement Description(IEnumerable<string> paragraphs) => new XElement(Maml + "description", Paras(paragraphs));

        private static IEnumerable<XElement> Paras(IEnumerable<string> paragraphs) =>
            paragraphs.Select(p => new XElement(Maml + "para", p));

        private static string Lower(bool b) => b ? "true" : "false";
    }
}

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using BmadGuard.HelpGen;

namespace BmadGuard.Tests.Surface
{
    /// <summary>
    /// The public surface of an assembled module folder, read without PowerShell: cmdlet classes through
    /// System.Reflection.MetadataLoadContext (nothing is loaded or run), psm1 functions by parsing their
    /// declarations, the psd1 as PowerShell data, and the PlatyPS pages. <see cref="Check"/> returns one finding
    /// per broken rule; an empty list means the surface is consistent.
    /// </summary>
    public static class ModuleSurface
    {
        /// <summary>PowerShell's approved verbs (Get-Verb, PowerShell 7.4).</summary>
        public static readonly HashSet<string> ApprovedVerbs = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            // Common
            "Add", "Clear", "Close", "Copy", "Enter", "Exit", "Find", "Format", "Get", "Hide", "Join", "Lock", "Move", "New",
            "Open", "Optimize", "Pop", "Push", "Redo", "Remove", "Rename", "Reset", "Resize", "Search", "Select", "Set",
            "Show", "Skip", "Split", "Step", "Switch", "Undo", "Unlock", "Watch",
            // Communications
            "Connect", "Disconnect", "Read", "Receive", "Send", "Write",
            // Data
            "Backup", "Checkpoint", "Compare", "Compress", "Convert", "ConvertFrom", "ConvertTo", "Dismount", "Edit",
            "Expand", "Export", "Group", "Import", "Initialize", "Limit", "Merge", "Mount", "Out", "Publish", "Restore",
            "Save", "Sync", "Unpublish", "Update",
            // Diagnostic
            "Debug", "Measure", "Ping", "Repair", "Resolve", "Test", "Trace",
            // Lifecycle
            "Approve", "Assert", "Build", "Complete", "Confirm", "Deny", "Deploy", "Disable", "Enable", "Install", "Invoke",
            "Register", "Request", "Restart", "Resume", "Start", "Stop", "Submit", "Suspend", "Uninstall", "Unregister", "Wait",
            // Security
            "Block", "Grant", "Protect", "Revoke", "Unblock", "Unprotect",
            // Other
            "Use",
        };

        /// <summary>Verbs whose commands change state and so must support -WhatIf/-Confirm.</summary>
        public static readonly HashSet<string> StateChangingVerbs = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "New", "Set", "Remove", "Clear", "Rename", "Reset", "Move", "Copy", "Edit", "Lock", "Unlock",
            "Publish", "Unpublish", "Restore", "Repair", "Backup", "Checkpoint", "Save", "Sync", "Merge", "Update",
            "Initialize", "Import", "Export", "Compress", "Expand", "Mount", "Dismount",
            "Start", "Stop", "Restart", "Suspend", "Resume", "Register", "Unregister", "Install", "Uninstall",
            "Enable", "Disable", "Deploy", "Submit", "Approve", "Deny",
            "Send", "Grant", "Revoke", "Block", "Unblock", "Protect", "Unprotect",
        };

        /// <summary>Parameters every cmdlet has; PlatyPS may document ProgressAction, never the others.</summary>
        private static readonly HashSet<string> CommonParameters = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Debug", "ErrorAction", "ErrorVariable", "InformationAction", "InformationVariable", "OutVariable", "OutBuffer",
            "PipelineVariable", "ProgressAction", "Verbose", "WarningAction", "WarningVariable",
        };

        private static readonly Regex FunctionDeclaration = new Regex(
            @"^[ \t]*function[ \t]+(?:(?:global|script):)?(?<name>[A-Za-z]+-[A-Za-z0-9]+)\b", RegexOptions.Multiline | RegexOptions.IgnoreCase);

        public sealed class CommandInfo
        {
            public CommandInfo(string name, string kind, string origin)
            {
                Name = name;
                Kind = kind;
                Origin = origin;
            }

            public string Name { get; }

            /// <summary>"cmdlet" or "function".</summary>
            public string Kind { get; }

            /// <summary>Type name or psm1 file, for findings.</summary>
            public string Origin { get; }

            public string Verb => Name.Substring(0, Name.IndexOf('-'));

            public bool SupportsShouldProcess { get; set; }

            public bool HasOutputType { get; set; }

            public SortedSet<string> Parameters { get; } = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);
        }

        /// <summary>
        /// Checks the assembled module in <paramref name="moduleDir"/> (psd1 at its top, bin/&lt;tfm&gt;/Name.dll,
        /// psm1 files, en-US help) against the PlatyPS pages in <paramref name="docsDir"/>.
        /// <paramref name="hostAssemblies"/> are the PowerShell reference assemblies (System.Management.Automation.dll)
        /// needed to resolve the cmdlet base classes and attributes.
        /// </summary>
        public static List<string> Check(string moduleDir, string moduleName, string docsDir, IEnumerable<string> hostAssemblies)
        {
            var findings = new List<string>();
            string manifestPath = Path.Combine(moduleDir, moduleName + ".psd1");
            if (!File.Exists(manifestPath))
            {
                findings.Add($"{manifestPath} does not exist");
                return findings;
            }

            Dictionary<string, object?> manifest = PowerShellData.ReadFile(manifestPath);
            var exportedCmdlets = new HashSet<string>(PowerShellData.StringList(manifest, "CmdletsToExport"), StringComparer.OrdinalIgnoreCase);
            var exportedFunctions = new HashSet<string>(PowerShellData.StringList(manifest, "FunctionsToExport"), StringComparer.OrdinalIgnoreCase);

            // Cmdlets: every bin/<tfm>/<Name>.dll must define the same set.
            string binDir = Path.Combine(moduleDir, "bin");
            string[] dlls = Directory.Exists(binDir)
                ? Directory.GetDirectories(binDir).Select(d => Path.Combine(d, moduleName + ".dll")).Where(File.Exists).OrderBy(p => p, StringComparer.Ordinal).ToArray()
                : Array.Empty<string>();
            if (dlls.Length == 0)
            {
                findings.Add($"no bin/<tfm>/{moduleName}.dll in {moduleDir}");
            }

            var cmdlets = new Dictionary<string, CommandInfo>(StringComparer.OrdinalIgnoreCase);
            foreach (string dll in dlls)
            {
                string tfm = Path.GetFileName(Path.GetDirectoryName(dll)!);
                List<CommandInfo> found = ReadCmdlets(dll, hostAssemblies);
                if (cmdlets.Count > 0)
                {
                    foreach (string missing in cmdlets.Keys.Except(found.Select(c => c.Name), StringComparer.OrdinalIgnoreCase))
                    {
                        findings.Add($"cmdlet {missing} is missing from bin/{tfm}/{moduleName}.dll");
                    }

                    foreach (CommandInfo extra in found.Where(c => !cmdlets.ContainsKey(c.Name)))
                    {
                        findings.Add($"cmdlet {extra.Name} exists only in bin/{tfm}/{moduleName}.dll");
                    }

                    continue;
                }

                foreach (CommandInfo c in found)
                {
                    cmdlets[c.Name] = c;
                }
            }

            // Functions: Verb-Noun declarations in the module's psm1 files.
            var functions = new Dictionary<string, CommandInfo>(StringComparer.OrdinalIgnoreCase);
            foreach (string psm1 in Directory.GetFiles(moduleDir, "*.psm1", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal))
            {
                foreach (CommandInfo f in ReadFunctions(psm1))
                {
                    if (!functions.TryAdd(f.Name, f))
                    {
                        findings.Add($"function {f.Name} is declared twice ({functions[f.Name].Origin}, {f.Origin})");
                    }
                }
            }

            foreach (string name in cmdlets.Keys.Where(n => !exportedCmdlets.Contains(n)).OrderBy(n => n))
            {
                findings.Add($"cmdlet {name} ({cmdlets[name].Origin}) is not in CmdletsToExport");
            }

            foreach (string name in exportedCmdlets.Where(n => !cmdlets.ContainsKey(n)).OrderBy(n => n))
            {
                findings.Add($"CmdletsToExport names {name}, but no [Cmdlet] class defines it");
            }

            foreach (string name in functions.Keys.Where(n => !exportedFunctions.Contains(n)).OrderBy(n => n))
            {
                findings.Add($"function {name} ({functions[name].Origin}) is not in FunctionsToExport");
            }

            foreach (string name in exportedFunctions.Where(n => !functions.ContainsKey(n)).OrderBy(n => n))
            {
                findings.Add($"FunctionsToExport names {name}, but no psm1 declares 'function {name}'");
            }

            List<CommandInfo> commands = cmdlets.Values.Concat(functions.Values).OrderBy(c => c.Name, StringComparer.OrdinalIgnoreCase).ToList();
            foreach (CommandInfo c in commands)
            {
                if (!ApprovedVerbs.Contains(c.Verb))
                {
                    findings.Add($"{c.Kind} {c.Name}: '{c.Verb}' is not an approved verb");
                }

                if (StateChangingVerbs.Contains(c.Verb) && !c.SupportsShouldProcess)
                {
                    findings.Add($"{c.Kind} {c.Name}: '{c.Verb}' changes state but the command does not declare SupportsShouldProcess");
                }

                if (c.Kind == "cmdlet" && !c.HasOutputType)
                {
                    findings.Add($"cmdlet {c.Name} ({c.Origin}) has no [OutputType]");
                }
            }

            CheckDocs(findings, commands, moduleName, docsDir);
            CheckBuiltHelp(findings, commands, moduleName, moduleDir);
            return findings;
        }

        private static void CheckDocs(List<string> findings, List<CommandInfo> commands, string moduleName, string docsDir)
        {
            var documented = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (CommandInfo c in commands)
            {
                string page = Path.Combine(docsDir, c.Name + ".md");
                if (!File.Exists(page))
                {
                    findings.Add($"{c.Kind} {c.Name} has no docs page {page}");
                    continue;
                }

                documented.Add(c.Name);
                CommandHelp help;
                try
                {
                    help = PlatyPsMarkdown.ParseCommandFile(page);
                }
                catch (HelpFormatException e)
                {
                    findings.Add($"{c.Kind} {c.Name}: docs page cannot be read: {e.Message}");
                    continue;
                }

                string expectedHelpFile = c.Kind == "cmdlet" ? moduleName + ".dll-Help.xml" : moduleName + "-Help.xml";
                if (!help.ExternalHelpFile.Equals(expectedHelpFile, StringComparison.OrdinalIgnoreCase))
                {
                    findings.Add($"{c.Kind} {c.Name}: docs page says 'external help file: {help.ExternalHelpFile}', expected {expectedHelpFile}");
                }

                var codeParameters = new SortedSet<string>(c.Parameters, StringComparer.OrdinalIgnoreCase);
                if (c.SupportsShouldProcess)
                {
                    codeParameters.Add("WhatIf");
                    codeParameters.Add("Confirm");
                }

                var docParameters = new SortedSet<string>(help.Parameters.Select(p => p.Name).Where(n => !CommonParameters.Contains(n)), StringComparer.OrdinalIgnoreCase);
                foreach (string missing in codeParameters.Except(docParameters, StringComparer.OrdinalIgnoreCase))
                {
                    findings.Add($"{c.Kind} {c.Name}: parameter -{missing} is not documented in {Path.GetFileName(page)}");
                }

                foreach (string extra in docParameters.Except(codeParameters, StringComparer.OrdinalIgnoreCase))
                {
                    findings.Add($"{c.Kind} {c.Name}: {Path.GetFileName(page)} documents -{extra}, which the command does not have");
                }

                if (help.Examples.Count < 2)
                {
                    findings.Add($"{c.Kind} {c.Name}: {Path.GetFileName(page)} has {help.Examples.Count} example(s); at least two are required");
                }
            }

            if (Directory.Exists(docsDir))
            {
                foreach (string page in Directory.GetFiles(docsDir, "*.md").OrderBy(p => p, StringComparer.Ordinal))
                {
                    string name = Path.GetFileNameWithoutExtension(page);
                    if (!PlatyPsMarkdown.IsAboutTopic(page) && !documented.Contains(name) && !commands.Any(c => c.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                    {
                        findings.Add($"docs page {Path.GetFileName(page)} documents {name}, which the module does not export");
                    }
                }
            }
        }

        /// <summary>The assembled en-US MAML has an entry for each command (Get-Help reads only those files).</summary>
        private static void CheckBuiltHelp(List<string> findings, List<CommandInfo> commands, string moduleName, string moduleDir)
        {
            var cache = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
            foreach (CommandInfo c in commands)
            {
                string file = Path.Combine(moduleDir, "en-US", c.Kind == "cmdlet" ? moduleName + ".dll-Help.xml" : moduleName + "-Help.xml");
                if (!cache.TryGetValue(file, out HashSet<string>? names))
                {
                    names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                    if (File.Exists(file))
                    {
                        System.Xml.Linq.XDocument doc = System.Xml.Linq.XDocument.Load(file);
                        foreach (System.Xml.Linq.XElement n in doc.Descendants(MamlWriter.Command + "details").Elements(MamlWriter.Command + "name"))
                        {
                            names.Add(n.Value.Trim());
                        }
                    }

                    cache[file] = names;
                }

                if (!names.Contains(c.Name))
                {
                    findings.Add($"{c.Kind} {c.Name} has no entry in the built help {Path.GetRelativePath(moduleDir, file)}");
                }
            }
        }

        /// <summary>Every non-abstract [Cmdlet] class of the assembly, read as metadata only.</summary>
        public static List<CommandInfo> ReadCmdlets(string dll, IEnumerable<string> hostAssemblies)
        {
            var paths = new List<string>();
            paths.AddRange(Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll"));
            paths.AddRange(hostAssemblies);
            string dir = Path.GetDirectoryName(dll)!;
            paths.AddRange(Directory.GetFiles(dir, "*.dll"));
            string deps = Path.Combine(dir, "dependencies");
            if (Directory.Exists(deps))
            {
                paths.AddRange(Directory.GetFiles(deps, "*.dll", SearchOption.AllDirectories));
            }

            var result = new List<CommandInfo>();
            using var context = new MetadataLoadContext(new PathAssemblyResolver(paths));
            Assembly assembly = context.LoadFromAssemblyPath(dll);
            Type[] types;
            try
            {
                types = assembly.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                types = e.Types.Where(t => t != null).ToArray()!;
            }

            foreach (Type type in types.Where(t => t.IsClass && !t.IsAbstract).OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                IList<CustomAttributeData> attributes = type.GetCustomAttributesData();
                CustomAttributeData? cmdlet = attributes.FirstOrDefault(a => a.AttributeType.FullName == "System.Management.Automation.CmdletAttribute");
                if (cmdlet == null)
                {
                    continue;
                }

                string verb = (string)cmdlet.ConstructorArguments[0].Value!;
                string noun = (string)cmdlet.ConstructorArguments[1].Value!;
                var info = new CommandInfo(verb + "-" + noun, "cmdlet", type.FullName!)
                {
                    SupportsShouldProcess = cmdlet.NamedArguments.Any(a => a.MemberName == "SupportsShouldProcess" && a.TypedValue.Value is bool b && b),
                    HasOutputType = attributes.Any(a => a.AttributeType.FullName == "System.Management.Automation.OutputTypeAttribute"),
                };

                foreach (PropertyInfo property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (property.GetCustomAttributesData().Any(a => a.AttributeType.FullName == "System.Management.Automation.ParameterAttribute"))
                    {
                        info.Parameters.Add(property.Name);
                    }
                }

                result.Add(info);
            }

            return result;
        }

        /// <summary>Verb-Noun functions of a psm1 with their param names and CmdletBinding options.</summary>
        public static List<CommandInfo> ReadFunctions(string psm1)
        {
            string text = File.ReadAllText(psm1);
            var result = new List<CommandInfo>();
            MatchCollection matches = FunctionDeclaration.Matches(text);
            for (int i = 0; i < matches.Count; i++)
            {
                Match m = matches[i];
                int end = i + 1 < matches.Count ? matches[i + 1].Index : text.Length;
                string body = StripComments(text.Substring(m.Index, end - m.Index));
                var info = new CommandInfo(m.Groups["name"].Value, "function", Path.GetFileName(psm1));
                Match binding = Regex.Match(body, @"\[CmdletBinding\s*\((?<args>[^\]]*)\)\s*\]", RegexOptions.IgnoreCase);
                info.SupportsShouldProcess = binding.Success
                    && Regex.IsMatch(binding.Groups["args"].Value, @"\bSupportsShouldProcess\b(?!\s*=\s*\$false)", RegexOptions.IgnoreCase);
                info.HasOutputType = Regex.IsMatch(body, @"\[OutputType\s*\(", RegexOptions.IgnoreCase);
                foreach (string p in ParamBlockNames(body))
                {
                    info.Parameters.Add(p);
                }

                result.Add(info);
            }

            return result;
        }

        private static string StripComments(string text)
        {
            text = Regex.Replace(text, @"<#.*?#>", " ", RegexOptions.Singleline);
            return Regex.Replace(text, @"(?m)(^|\s)#[^\n]*", "$1");
        }

        /// <summary>The parameter names of the first param( ) block: each top-level comma-separated entry, attributes removed.</summary>
        public static List<string> ParamBlockNames(string functionText)
        {
            var names = new List<string>();
            Match start = Regex.Match(functionText, @"\bparam\s*\(", RegexOptions.IgnoreCase);
            if (!start.Success)
            {
                return names;
            }

            int i = start.Index + start.Length;
            int depth = 0;
            var entry = new StringBuilder();
            for (; i < functionText.Length; i++)
            {
                char c = functionText[i];
                if (c == '\'' || c == '"')
                {
                    int close = functionText.IndexOf(c, i + 1);
                    if (close < 0)
                    {
                        break;
                    }

                    entry.Append(functionText, i, close - i + 1);
                    i = close;
                    continue;
                }

                if (c == '(' || c == '[' || c == '{')
                {
                    depth++;
                }
                else if (c == ')' || c == ']' || c == '}')
                {
                    if (depth == 0)
                    {
                        AddName(entry.ToString());
                        break;
                    }

                    depth--;
                }
                else if (c == ',' && depth == 0)
                {
                    AddName(entry.ToString());
                    entry.Clear();
                    continue;
                }

                entry.Append(c);
            }

            return names;

            void AddName(string e)
            {
                // Drop leading [Attribute(...)] and [type] groups, then the first $name is the parameter.
                string s = e.Trim();
                while (s.StartsWith("[", StringComparison.Ordinal))
                {
                    int d = 0;
                    int k = 0;
                    for (; k < s.Length; k++)
                    {
                        if (s[k] == '[')
                        {
                            d++;
                        }
                        else if (s[k] == ']' && --d == 0)
                        {
                            break;
                        }
                    }

                    s = k + 1 < s.Length ? s.Substring(k + 1).TrimStart() : string.Empty;
                }

                Match n = Regex.Match(s, @"^\$(?<name>[A-Za-z_][A-Za-z0-9_]*)");
                if (n.Success)
                {
                    names.Add(n.Groups["name"].Value);
                }
            }
        }
    }
}

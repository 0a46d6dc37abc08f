using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Build-time tool for the BmadGuard PowerShell module (called by build/BmadGuard.Module.proj and build.ps1):
    ///   help   --docs DIR --out DIR                          PlatyPS markdown → MAML *-Help.xml + about_*.help.txt
    ///   check  --module DIR --name NAME [--tfm TFM]...       the assembled folder is complete and has no test/build files
    ///   pack   --module DIR --name NAME --out DIR            the folder as a PSResourceGet-style .nupkg
    /// Exit codes: 0 done, 1 a problem in the inputs (printed as file:line: message), 2 bad usage.
    /// </summary>
    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length == 0 || args[0] is "-h" or "--help")
            {
                Console.WriteLine("usage: BmadGuard.HelpGen help --docs DIR --out DIR | check --module DIR --name NAME [--tfm TFM]... | pack --module DIR --name NAME --out DIR");
                return args.Length == 0 ? 2 : 0;
            }

            Dictionary<string, List<string>> options;
            try
            {
                options = ParseOptions(args.Skip(1).ToArray());
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine("helpgen: " + e.Message);
                return 2;
            }

            string? Get(string key) => options.TryGetValue(key, out List<string>? v) ? v[^1] : null;
            try
            {
                switch (args[0])
                {
                    case "help":
                    {
                        string docs = Get("docs") ?? throw new ArgumentException("--docs is required");
                        string output = Get("out") ?? throw new ArgumentException("--out is required");
                        HelpBuilder.Result result = HelpBuilder.Build(docs, output);
                        foreach (string file in result.Files)
                        {
                            Console.WriteLine($"helpgen: wrote {file}");
                        }

                        Console.WriteLine($"helpgen: {result.Commands.Count} command page(s), {result.Topics.Count} about topic(s)");
                        return 0;
                    }

                    case "check":
                    {
                        string module = Get("module") ?? throw new ArgumentException("--module is required");
                        string name = Get("name") ?? throw new ArgumentException("--name is required");
                        List<string> tfms = options.TryGetValue("tfm", out List<string>? t) ? t : new List<string>();
                        List<string> problems = ModuleLayout.Check(module, name, tfms);
                        foreach (string p in problems)
                        {
                            Console.Error.WriteLine($"{module}: {p}");
                        }

                        Console.WriteLine(problems.Count == 0 ? $"helpgen: {module} is ready to publish" : $"helpgen: {problems.Count} problem(s) in {module}");
                        return problems.Count == 0 ? 0 : 1;
                    }

                    case "pack":
                    {
                        string module = Get("module") ?? throw new ArgumentException("--module is required");
                        string name = Get("name") ?? throw new ArgumentException("--name is required");
                        string output = Get("out") ?? throw new ArgumentException("--out is required");
                        Console.WriteLine($"helpgen: wrote {ModulePackage.Pack(module, name, output)}");
                        return 0;
                    }

                    default:
                        Console.Error.WriteLine($"helpgen: unknown command '{args[0]}'");
                        return 2;
                }
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine("helpgen: " + e.Message);
                return 2;
            }
            catch (HelpFormatException e)
            {
                Console.Error.WriteLine(e.Message);
                return 1;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine("helpgen: " + e.Message);
                return 1;
            }
        }

        private static Dictionary<string, List<string>> ParseOptions(string[] args)
        {
            var options = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"expected '--option value', got '{args[i]}'");
                }

                string key = args[i].Substring(2);
                if (!options.TryGetValue(key, out List<string>? list))
                {
                    options[key] = list = new List<string>();
                }

                list.Add(args[++i]);
            }

            return options;
        }
    }
}

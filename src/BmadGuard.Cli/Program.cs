using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics.CodeAnalysis;
using System.Threading.Tasks;

namespace BmadGuard.Cli
{
    /// <summary>
    /// bmadguard: JSON in, JSON out. Exit codes: 0 success; 1 the store has a problem (damage, lock
    /// timeout, disk full); 2 bad usage or bad input. Errors are one line on stderr.
    /// Each command lives in its own file under Commands/ and is registered here.
    /// </summary>
    public static class Program
    {
        // verify with --schema in the trimmed (Native AOT) build: NJsonSchema reads a schema through Newtonsoft.Json,
        // which finds the extension-data dictionary's indexer by reflection, and resolves the schema's own path through
        // System.IO.Path/File/Directory found by name (NJsonSchema's DynamicApis); trimming would drop that metadata.
        [DynamicDependency(DynamicallyAccessedMemberTypes.PublicMethods, typeof(System.IO.Path))]
        [DynamicDependency(DynamicallyAccessedMemberTypes.PublicMethods, typeof(System.IO.File))]
        [DynamicDependency(DynamicallyAccessedMemberTypes.PublicMethods, typeof(System.IO.Directory))]
        [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Dictionary<string, object>))]
        [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(IDictionary<string, object>))]
        [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(ICollection<KeyValuePair<string, object>>))]
        public static int Main(string[] args)
        {
            var root = new RootCommand("bmadguard: durable, checksummed event stores for BMAD agents. JSON in, JSON out.");
            StoreCommands.Register(root);
            BackupCommands.Register(root);
            MonitorCommands.Register(root);
            IntegrityCommands.Register(root);

            var parse = root.Parse(args);
            if (parse.Errors.Count > 0)
            {
                foreach (var error in parse.Errors)
                {
                    Console.Error.WriteLine("bmadguard: " + error.Message);
                }

                return ExitCodes.Usage;
            }

            return parse.Invoke();
        }
    }

    public static class ExitCodes
    {
        public const int Success = 0;
        public const int StoreProblem = 1;
        public const int Usage = 2;
    }
}

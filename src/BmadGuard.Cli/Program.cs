using System;
using System.CommandLine;
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

namespace BmadGuard.Tests.Store
{
    /// <summary>Runs the real CLI (thin names over Support.Cli, kept for the store tests).</summary>
    public static class Bmad
    {
        public static Support.Cli.Result Run(params string[] args) => Support.Cli.Run(args);

        public static Support.Cli.Result RunWithStdin(string stdin, params string[] args) => Support.Cli.RunWithStdin(stdin, args);
    }
}

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// Runs the real CLI. (Support.Cli.Run("get", "--store", …) binds to the overload whose first parameter
    /// is stdin, because C# prefers the candidate with more declared parameters; these names cannot be mistaken.)
    /// </summary>
    public static class Bmad
    {
        public static Support.Cli.Result Run(params string[] args) => Support.Cli.Run(null, args);

        public static Support.Cli.Result RunWithStdin(string stdin, params string[] args) => Support.Cli.Run(stdin, args);
    }
}

using System;

namespace BmadGuard
{
    /// <summary>
    /// The exception of every ErrorRecord a BmadGuard cmdlet writes for a failure it reports on purpose, so a script
    /// can catch it by type: <c>catch [BmadGuard.BmadGuardException] { $_.Exception.Code }</c>.
    /// <para>
    /// BmadGuard.Core (with its own exception type) is loaded into an isolated AssemblyLoadContext, where PowerShell's
    /// type resolution does not look, so its type cannot be named in a script. This type lives in BmadGuard.dll, the
    /// binary module PowerShell loads itself; the Core failure (or the I/O exception) is its InnerException.
    /// </para>
    /// </summary>
    public class BmadGuardException : Exception
    {
        public BmadGuardException(string code, string kind, string message, string? path, long? offset, Exception? inner)
            : base(message, inner)
        {
            Code = code;
            Kind = kind;
            Path = path;
            Offset = offset;
        }

        /// <summary>The stable condition, e.g. StoreNotFound, LockTimeout, InvalidEventType (the ErrorId without the command).</summary>
        public string Code { get; }

        /// <summary>InvalidInput (the caller's input; nothing was written) or StoreProblem (the store cannot do it).</summary>
        public string Kind { get; }

        /// <summary>The file the error is about, when there is one.</summary>
        public string? Path { get; }

        /// <summary>The byte offset in <see cref="Path"/> the error is about, when there is one.</summary>
        public long? Offset { get; }

        /// <summary>
        /// What to run next, in PowerShell's own commands: Core's messages describe the problem only, and each front
        /// end (this module, the CLI) names its own commands.
        /// </summary>
        internal static string Advice(Core.BmadGuardException ex)
        {
            switch (ex.Code)
            {
                case Core.ErrorCodes.StoreNotFound:
                    return ex.Path != null ? $" Create one with New-BmadStore -Path '{ex.Path.Replace("'", "''")}'." : " Create one with New-BmadStore.";
                case Core.ErrorCodes.StoreDamaged:
                    return " Run Test-BmadIntegrity for a full report, then Repair-BmadStore or Restore-BmadStore.";
                case Core.ErrorCodes.MonitorAlreadyRunning:
                    return " Get-BmadMonitor shows it.";
                default:
                    return string.Empty;
            }
        }

        internal static BmadGuardException Wrap(Core.BmadGuardException core) => From(core, core.Code);

        internal static BmadGuardException From(Exception ex, string condition)
        {
            if (ex is BmadGuardException mine)
            {
                return mine;
            }

            if (ex is Core.BmadGuardException core)
            {
                return new BmadGuardException(core.Code, core.Kind.ToString(), core.Message + Advice(core), core.Path, core.Offset, core);
            }

            return new BmadGuardException(condition, "StoreProblem", ex.Message, null, null, ex);
        }
    }
}

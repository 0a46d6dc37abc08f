using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Runtime.InteropServices;
using BmadGuard.Core;
using BmadGuard.Core.Scheduling;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Get-BmadMonitorTaskDefinition: renders the systemd unit, launchd plist or Task Scheduler XML that runs
    /// <c>bmadguard monitor --store STORE</c> (MonitorTaskTemplates.Render). Register-BmadMonitorTask installs it;
    /// on its own it shows exactly what would be installed.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BmadMonitorTaskDefinition")]
    [OutputType(typeof(BmadMonitorTaskDefinition))]
    public sealed class GetBmadMonitorTaskDefinitionCommand : PSCmdlet
    {
        internal const string ErrorPrefix = "GetBmadMonitorTaskDefinition";

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string? Store { get; set; }

        /// <summary>Systemd, Launchd or TaskScheduler (default: the one of this operating system).</summary>
        [Parameter]
        [ValidateSet("Systemd", "Launchd", "TaskScheduler", IgnoreCase = true)]
        public string? Platform { get; set; }

        /// <summary>User (the user's own service manager; default) or System (a system service, run as -User).</summary>
        [Parameter]
        [ValidateSet("User", "System", IgnoreCase = true)]
        public string Scope { get; set; } = "User";

        /// <summary>The account the service runs as (System scope).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? User { get; set; }

        /// <summary>The bmadguard executable (default: the one found on PATH).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Executable { get; set; }

        /// <summary>A monitor configuration file for the service to use (default: the store's bmadguard.monitor.json).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        protected override void ProcessRecord()
        {
            string store = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            try
            {
                var options = new MonitorTaskOptions
                {
                    Store = store,
                    Executable = Executable != null ? SessionState.Path.GetUnresolvedProviderPathFromPSPath(Executable) : FindExecutable(),
                    ConfigPath = ConfigPath == null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(ConfigPath),
                    User = User,
                    SystemScope = string.Equals(Scope, "System", StringComparison.OrdinalIgnoreCase),
                };
                var platform = Platform != null ? (MonitorTaskPlatform)Enum.Parse(typeof(MonitorTaskPlatform), Platform, true) : DefaultPlatform();
                WriteObject(new BmadMonitorTaskDefinition(MonitorTaskTemplates.Render(platform, options), store, User, options.SystemScope));
            }
            catch (BmadGuardException ex)
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, store));
            }
        }

        internal static MonitorTaskPlatform DefaultPlatform()
            => RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? MonitorTaskPlatform.TaskScheduler
                : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? MonitorTaskPlatform.Launchd
                : MonitorTaskPlatform.Systemd;

        /// <summary>bmadguard from PATH, as a full path: a service manager does not search the user's PATH.</summary>
        private static string FindExecutable()
        {
            string[] names = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? new[] { "bmadguard.exe", "bmadguard.cmd" } : new[] { "bmadguard" };
            foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator).Where(d => d.Length > 0))
            {
                foreach (string name in names)
                {
                    string candidate = System.IO.Path.Combine(dir, name);
                    if (File.Exists(candidate))
                    {
                        return candidate;
                    }
                }
            }

            throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                "The bmadguard executable is not on PATH: install it (dotnet tool install -g BmadGuard.Tool) or give -Executable with its full path.");
        }
    }
}

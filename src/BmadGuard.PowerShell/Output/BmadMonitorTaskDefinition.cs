using System.Linq;
using BmadGuard.Core.Scheduling;

namespace BmadGuard
{
    /// <summary>A monitor service definition rendered from BmadGuard's templates (Get-BmadMonitorTaskDefinition).</summary>
    public sealed class BmadMonitorTaskDefinition
    {
        internal BmadMonitorTaskDefinition(MonitorTaskDefinition d, string store, string? user, bool systemScope)
        {
            Platform = d.Platform.ToString();
            Name = d.Name;
            InstallPath = d.InstallPath;
            Content = d.Content;
            Executable = d.Executable;
            Arguments = d.Arguments.ToArray();
            Store = store;
            User = user;
            Scope = systemScope ? "System" : "User";
        }

        /// <summary>Systemd, Launchd or TaskScheduler.</summary>
        public string Platform { get; }

        /// <summary>The unit name, launchd label or task name.</summary>
        public string Name { get; }

        /// <summary>Where the file is installed (systemd, launchd), or the Task Scheduler folder.</summary>
        public string InstallPath { get; }

        /// <summary>The unit, plist or task XML.</summary>
        public string Content { get; }

        /// <summary>The bmadguard executable the service runs.</summary>
        public string Executable { get; }

        /// <summary>Its arguments: monitor --store STORE [--config FILE].</summary>
        public string[] Arguments { get; }

        /// <summary>The store (always an explicit full path).</summary>
        public string Store { get; }

        /// <summary>The account the service runs as; null for the default.</summary>
        public string? User { get; }

        /// <summary>User (the user's own service manager) or System.</summary>
        public string Scope { get; }
    }
}

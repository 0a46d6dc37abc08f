using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace BmadGuard.Core.Scheduling
{
    /// <summary>Which service manager runs the monitor.</summary>
    public enum MonitorTaskPlatform
    {
        /// <summary>A systemd service unit (Linux).</summary>
        Systemd,
        /// <summary>A launchd property list (macOS).</summary>
        Launchd,
        /// <summary>A Windows Task Scheduler task (XML for Register-ScheduledTask -Xml / schtasks /XML).</summary>
        TaskScheduler,
    }

    /// <summary>What the generated definition runs and as whom.</summary>
    public sealed class MonitorTaskOptions
    {
        /// <summary>The store, as a full path: a scheduled account has no profile and no $BMADGUARD_STORE, so it is always explicit.</summary>
        public string Store { get; set; } = "";

        /// <summary>The bmadguard executable (full path), or PowerShell's when <see cref="PowerShellModule"/> is set.</summary>
        public string Executable { get; set; } = "bmadguard";

        /// <summary>
        /// The BmadGuard PowerShell module (its .psd1, full path). When set, the service runs PowerShell
        /// (<see cref="Executable"/>) with that module and <c>Start-BmadMonitor</c>, so a module user needs no CLI.
        /// </summary>
        public string? PowerShellModule { get; set; }

        /// <summary>Arguments PowerShell needs before its own (the pwsh.dll when PowerShell runs under dotnet as a tool).</summary>
        public IReadOnlyList<string>? HostArguments { get; set; }

        /// <summary>A monitor configuration file (default: the store's bmadguard.monitor.json, found by the monitor itself).</summary>
        public string? ConfigPath { get; set; }

        /// <summary>The account the monitor runs as; null for the current user (user scope) or the service manager's default.</summary>
        public string? User { get; set; }

        /// <summary>True for a system-wide service (/etc/systemd/system, /Library/LaunchDaemons, a boot trigger); false for the user's own.</summary>
        public bool SystemScope { get; set; }

        /// <summary>The home directory of the user scope (for the install path); default: the current user's.</summary>
        public string? HomeDirectory { get; set; }
    }

    /// <summary>A rendered unit, plist or task: its name, where it goes and its text.</summary>
    public sealed class MonitorTaskDefinition
    {
        internal MonitorTaskDefinition(MonitorTaskPlatform platform, string name, string installPath, string content, IReadOnlyList<string> arguments, string executable)
        {
            Platform = platform;
            Name = name;
            InstallPath = installPath;
            Content = content;
            Arguments = arguments;
            Executable = executable;
        }

        public MonitorTaskPlatform Platform { get; }

        /// <summary>The unit name (bmadguard-monitor-&lt;id&gt;.service), launchd label or task name.</summary>
        public string Name { get; }

        /// <summary>Where the file goes (systemd, launchd), or the task's folder path in Task Scheduler.</summary>
        public string InstallPath { get; }

        public string Content { get; }

        public string Executable { get; }

        /// <summary>The arguments the service manager passes to <see cref="Executable"/>.</summary>
        public IReadOnlyList<string> Arguments { get; }
    }

    /// <summary>
    /// The templates Register-BmadMonitorTask installs (and xunit checks): one long-lived
    /// <c>bmadguard monitor --store DIR</c> per store, restarted on failure, stopped by SIGTERM (systemd, launchd)
    /// or by ending the task. The name carries a short hash of the store path so several stores get several tasks.
    /// </summary>
    public static class MonitorTaskTemplates
    {
        public const string TaskFolder = @"\BmadGuard\";
        private const string TaskNamespace = "http://schemas.microsoft.com/windows/2004/02/mit/task";

        /// <summary>A short stable id for a store path (first 8 hex digits of the SHA-256 of its UTF-8 bytes).</summary>
        public static string StoreId(string store)
        {
            using var sha = SHA256.Create();
            byte[] hash = sha.ComputeHash(Encoding.UTF8.GetBytes(store));
            return string.Concat(hash.Take(4).Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
        }

        public static MonitorTaskDefinition Render(MonitorTaskPlatform platform, MonitorTaskOptions options)
        {
            Validate(options);
            switch (platform)
            {
                case MonitorTaskPlatform.Systemd: return Systemd(options);
                case MonitorTaskPlatform.Launchd: return Launchd(options);
                case MonitorTaskPlatform.TaskScheduler: return TaskScheduler(options);
                default: throw new ArgumentOutOfRangeException(nameof(platform));
            }
        }

        /// <summary>The arguments of the monitor process: always the explicit store.</summary>
        public static IReadOnlyList<string> MonitorArguments(MonitorTaskOptions o)
        {
            if (!string.IsNullOrEmpty(o.PowerShellModule))
            {
                // PowerShell with the module: one -Command script, every path a single-quoted PowerShell string.
                string script = "Import-Module -Name " + PowerShellQuote(o.PowerShellModule!) + " -ErrorAction Stop; Start-BmadMonitor -Store " + PowerShellQuote(o.Store);
                if (!string.IsNullOrEmpty(o.ConfigPath))
                {
                    script += " -ConfigPath " + PowerShellQuote(o.ConfigPath!);
                }

                var ps = new List<string>(o.HostArguments ?? Array.Empty<string>()) { "-NoProfile", "-NonInteractive", "-Command", script };
                return ps;
            }

            var args = new List<string> { "monitor", "--store", o.Store };
            if (!string.IsNullOrEmpty(o.ConfigPath))
            {
                args.Add("--config");
                args.Add(o.ConfigPath!);
            }

            return args;
        }

        /// <summary>A PowerShell single-quoted string literal (a quote inside is doubled; nothing is expanded).</summary>
        public static string PowerShellQuote(string text) => "'" + text.Replace("'", "''") + "'";

        private static void Validate(MonitorTaskOptions o)
        {
            if (string.IsNullOrWhiteSpace(o.Store) || !IsAbsolute(o.Store))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"The store path for a scheduled monitor must be a full path (a scheduled account has no working directory or profile): '{o.Store}'.");
            }

            if (string.IsNullOrWhiteSpace(o.Executable))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "The bmadguard executable path is empty.");
            }

            foreach (string? s in new[] { o.Store, o.Executable, o.ConfigPath, o.User, o.PowerShellModule }.Concat(o.HostArguments ?? Array.Empty<string>()))
            {
                if (s != null && s.Any(c => c == '\n' || c == '\r' || c == '\0'))
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                        "Paths and user names in a scheduled monitor definition cannot contain line breaks or NUL characters.");
                }
            }
        }

        /// <summary>Absolute on this OS, or a Windows drive/UNC path (a task definition may be rendered elsewhere for review).</summary>
        private static bool IsAbsolute(string path)
            => path.StartsWith("/", StringComparison.Ordinal)
               || (path.Length > 2 && char.IsLetter(path[0]) && path[1] == ':' && (path[2] == '\\' || path[2] == '/'))
               || path.StartsWith("\\\\", StringComparison.Ordinal);

        // ------------------------------------------------------------------ systemd

        public static MonitorTaskDefinition Systemd(MonitorTaskOptions o)
        {
            Validate(o);
            string name = "bmadguard-monitor-" + StoreId(o.Store) + ".service";
            var args = MonitorArguments(o);
            var sb = new StringBuilder();
            sb.Append("# Generated by Register-BmadMonitorTask (BmadGuard). The store path is explicit: a service has no profile.\n");
            if (!o.SystemScope)
            {
                sb.Append("# A user unit runs only while you are logged in. To keep the monitor running after you log out\n");
                sb.Append("# (and to start it at boot), let your user manager outlive your sessions once: loginctl enable-linger ").Append(SystemdEscapeText(o.User ?? "$USER")).Append('\n');
            }

            sb.Append("[Unit]\n");
            sb.Append("Description=BmadGuard monitor for ").Append(SystemdEscapeText(o.Store)).Append('\n');
            sb.Append("After=local-fs.target\n\n");
            sb.Append("[Service]\n");
            sb.Append("Type=simple\n");
            sb.Append("ExecStart=").Append(SystemdQuote(o.Executable));
            foreach (string a in args)
            {
                sb.Append(' ').Append(SystemdQuote(a));
            }

            sb.Append('\n');
            if (o.SystemScope && !string.IsNullOrEmpty(o.User))
            {
                // User= is only valid for system units: a user unit already runs as its user.
                sb.Append("User=").Append(o.User).Append('\n');
            }

            sb.Append("Environment=").Append(SystemdQuoteAssignment("BMADGUARD_STORE=" + o.Store)).Append('\n');
            sb.Append("KillSignal=SIGTERM\n");
            sb.Append("TimeoutStopSec=30\n");
            sb.Append("Restart=on-failure\n");
            sb.Append("RestartSec=5\n\n");
            sb.Append("[Install]\n");
            sb.Append("WantedBy=").Append(o.SystemScope ? "multi-user.target" : "default.target").Append('\n');

            string dir = o.SystemScope
                ? "/etc/systemd/system"
                : Path.Combine(Home(o), ".config", "systemd", "user");
            return new MonitorTaskDefinition(MonitorTaskPlatform.Systemd, name, Path.Combine(dir, name), sb.ToString(), args, o.Executable);
        }

        /// <summary>One systemd command-line word: double-quoted, with \ " escaped and % $ doubled (specifier and variable expansion).</summary>
        public static string SystemdQuote(string word)
            => "\"" + word.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("%", "%%").Replace("$", "$$") + "\"";

        /// <summary>
        /// One Environment= assignment: double-quoted with \ and " escaped and % doubled (specifiers are resolved
        /// there), but $ kept as it is: systemd.exec(5) says Environment= performs no variable expansion, so "$$"
        /// would reach the process as two dollar signs.
        /// </summary>
        public static string SystemdQuoteAssignment(string assignment)
            => "\"" + assignment.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("%", "%%") + "\"";

        private static string SystemdEscapeText(string text) => text.Replace("%", "%%");

        // ------------------------------------------------------------------ launchd

        public static MonitorTaskDefinition Launchd(MonitorTaskOptions o)
        {
            Validate(o);
            string label = "com.bmadguard.monitor." + StoreId(o.Store);
            var args = MonitorArguments(o);
            var dict = new XElement("dict",
                new XElement("key", "Label"), new XElement("string", label),
                new XElement("key", "ProgramArguments"),
                new XElement("array", new[] { o.Executable }.Concat(args).Select(a => new XElement("string", a))),
                new XElement("key", "EnvironmentVariables"),
                new XElement("dict", new XElement("key", "BMADGUARD_STORE"), new XElement("string", o.Store)),
                new XElement("key", "RunAtLoad"), new XElement("true"),
                new XElement("key", "KeepAlive"),
                new XElement("dict", new XElement("key", "SuccessfulExit"), new XElement("false")),
                new XElement("key", "ThrottleInterval"), new XElement("integer", "5"),
                new XElement("key", "StandardErrorPath"), new XElement("string", Path.Combine(o.Store, "monitor.stderr.log")));
            if (o.SystemScope && !string.IsNullOrEmpty(o.User))
            {
                dict.Add(new XElement("key", "UserName"), new XElement("string", o.User));
            }

            var doc = new XDocument(
                new XDeclaration("1.0", "UTF-8", null),
                new XDocumentType("plist", "-//Apple//DTD PLIST 1.0//EN", "http://www.apple.com/DTDs/PropertyList-1.0.dtd", null),
                new XElement("plist", new XAttribute("version", "1.0"), dict));
            string dir = o.SystemScope ? "/Library/LaunchDaemons" : Path.Combine(Home(o), "Library", "LaunchAgents");
            return new MonitorTaskDefinition(MonitorTaskPlatform.Launchd, label, Path.Combine(dir, label + ".plist"), ToText(doc), args, o.Executable);
        }

        // ------------------------------------------------------------------ Task Scheduler

        public static MonitorTaskDefinition TaskScheduler(MonitorTaskOptions o)
        {
            Validate(o);
            string name = "BmadGuard Monitor " + StoreId(o.Store);
            var args = MonitorArguments(o);
            XNamespace ns = TaskNamespace;
            string? user = string.IsNullOrEmpty(o.User) ? null : o.User;

            // A system task starts at boot and runs whether anyone is logged on (S4U/service account: no stored
            // password needed for local files; Register-BmadMonitorTask -Credential switches to Password logon);
            // a user task starts at the user's logon, interactively.
            var trigger = o.SystemScope
                ? new XElement(ns + "BootTrigger", new XElement(ns + "Enabled", "true"))
                : new XElement(ns + "LogonTrigger", new XElement(ns + "Enabled", "true"), user != null ? new XElement(ns + "UserId", user) : null);
            var principal = new XElement(ns + "Principal", new XAttribute("id", "Author"),
                user != null ? new XElement(ns + "UserId", user) : null,
                new XElement(ns + "LogonType", o.SystemScope ? (user == null || IsServiceAccount(user) ? "ServiceAccount" : "S4U") : "InteractiveToken"),
                new XElement(ns + "RunLevel", "LeastPrivilege"));
            if (o.SystemScope && user == null)
            {
                principal.AddFirst(new XElement(ns + "UserId", "S-1-5-18")); // LocalSystem
            }

            var doc = new XDocument(
                new XDeclaration("1.0", "UTF-16", null),
                new XElement(ns + "Task", new XAttribute("version", "1.4"),
                    new XElement(ns + "RegistrationInfo",
                        new XElement(ns + "Author", "BmadGuard"),
                        new XElement(ns + "Description", "BmadGuard monitor for " + o.Store + " (generated by Register-BmadMonitorTask)."),
                        new XElement(ns + "URI", TaskFolder + name)),
                    new XElement(ns + "Triggers", trigger),
                    new XElement(ns + "Principals", principal),
                    new XElement(ns + "Settings",
                        new XElement(ns + "MultipleInstancesPolicy", "IgnoreNew"),
                        new XElement(ns + "DisallowStartIfOnBatteries", "false"),
                        new XElement(ns + "StopIfGoingOnBatteries", "false"),
                        new XElement(ns + "ExecutionTimeLimit", "PT0S"),
                        new XElement(ns + "RestartOnFailure", new XElement(ns + "Interval", "PT1M"), new XElement(ns + "Count", "999")),
                        new XElement(ns + "StartWhenAvailable", "true"),
                        new XElement(ns + "Enabled", "true")),
                    new XElement(ns + "Actions", new XAttribute("Context", "Author"),
                        new XElement(ns + "Exec",
                            new XElement(ns + "Command", o.Executable),
                            new XElement(ns + "Arguments", string.Join(" ", args.Select(WindowsQuote))),
                            new XElement(ns + "WorkingDirectory", o.Store)))));
            return new MonitorTaskDefinition(MonitorTaskPlatform.TaskScheduler, name, TaskFolder, ToText(doc), args, o.Executable);
        }

        private static bool IsServiceAccount(string user)
        {
            string u = user.ToUpperInvariant();
            return u == "SYSTEM" || u == "NT AUTHORITY\\SYSTEM" || u == "LOCAL SERVICE" || u == "NT AUTHORITY\\LOCALSERVICE"
                   || u == "NETWORK SERVICE" || u == "NT AUTHORITY\\NETWORKSERVICE" || u.StartsWith("S-1-5-", StringComparison.Ordinal);
        }

        /// <summary>One Windows command-line argument (CommandLineToArgvW rules): quoted when needed, backslashes before quotes doubled.</summary>
        public static string WindowsQuote(string arg)
        {
            if (arg.Length > 0 && arg.IndexOfAny(new[] { ' ', '\t', '"' }) < 0)
            {
                return arg;
            }

            var sb = new StringBuilder("\"");
            int backslashes = 0;
            foreach (char c in arg)
            {
                if (c == '\\')
                {
                    backslashes++;
                    continue;
                }

                if (c == '"')
                {
                    sb.Append('\\', backslashes * 2 + 1).Append('"');
                }
                else
                {
                    sb.Append('\\', backslashes).Append(c);
                }

                backslashes = 0;
            }

            sb.Append('\\', backslashes * 2).Append('"');
            return sb.ToString();
        }

        private static string Home(MonitorTaskOptions o)
            => o.HomeDirectory ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

        private static string ToText(XDocument doc)
        {
            var settings = new XmlWriterSettings { Indent = true, IndentChars = "  ", OmitXmlDeclaration = false, NewLineChars = "\n" };
            var sb = new StringBuilder();
            using (var w = XmlWriter.Create(new StringWriterWithEncoding(sb, doc.Declaration?.Encoding == "UTF-16" ? Encoding.Unicode : new UTF8Encoding(false)), settings))
            {
                doc.Save(w);
            }

            return sb.ToString() + "\n";
        }

        private sealed class StringWriterWithEncoding : StringWriter
        {
            private readonly Encoding _encoding;

            public StringWriterWithEncoding(StringBuilder sb, Encoding encoding)
                : base(sb, CultureInfo.InvariantCulture) => _encoding = encoding;

            public override Encoding Encoding => _encoding;
        }
    }
}

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using BmadGuard.Core;
using BmadGuard.Core.Scheduling;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// The unit, plist and task XML Register-BmadMonitorTask installs: each runs `bmadguard monitor --store STORE`
    /// with the store explicit (a service account has no profile), restarts on failure, and runs as the chosen account.
    /// </summary>
    public class MonitorTaskTemplateTests
    {
        private const string Store = "/srv/bmad projects/shop's 100% $HOME/store";
        private const string Exe = "/usr/local/bin/bmadguard";

        private static MonitorTaskOptions Options(bool system = true, string? user = "bmad", string store = Store)
            => new MonitorTaskOptions { Store = store, Executable = Exe, User = user, SystemScope = system, HomeDirectory = "/home/dev" };

        /// <summary>systemd's own splitting of a quoted command line (the subset our quoting produces).</summary>
        private static List<string> SystemdSplit(string line)
        {
            var words = new List<string>();
            int i = 0;
            while (i < line.Length)
            {
                if (line[i] == ' ')
                {
                    i++;
                    continue;
                }

                Assert.Equal('"', line[i]);
                var sb = new StringBuilder();
                i++;
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                    }
                    else if ((line[i] == '%' || line[i] == '$') && i + 1 < line.Length && line[i + 1] == line[i])
                    {
                        i++; // %% and $$ are a literal % and $
                    }

                    sb.Append(line[i]);
                    i++;
                }

                i++;
                words.Add(sb.ToString());
            }

            return words;
        }

        [Fact]
        public void The_systemd_unit_runs_the_monitor_for_the_explicit_store_as_the_user_and_restarts_on_failure()
        {
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options());
            string[] lines = d.Content.Split('\n');
            string exec = lines.Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal)).Substring("ExecStart=".Length);
            Assert.Equal(new[] { Exe, "monitor", "--store", Store }, SystemdSplit(exec));
            Assert.Contains("User=bmad", lines);
            Assert.Contains("Restart=on-failure", lines);
            Assert.Contains("KillSignal=SIGTERM", lines);
            Assert.Contains("Type=simple", lines);
            Assert.Contains("WantedBy=multi-user.target", lines);
            Assert.Contains("[Service]", lines);
            Assert.Equal("/etc/systemd/system/" + d.Name, d.InstallPath);
            Assert.Matches("^bmadguard-monitor-[0-9a-f]{8}\\.service$", d.Name);
        }

        [Fact]
        public void A_user_unit_has_no_User_line_and_goes_to_the_users_systemd_folder()
        {
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options(system: false));
            Assert.DoesNotContain(d.Content.Split('\n'), l => l.StartsWith("User=", StringComparison.Ordinal));
            Assert.Contains("WantedBy=default.target", d.Content.Split('\n'));
            Assert.Equal(Path.Combine("/home/dev", ".config", "systemd", "user", d.Name), d.InstallPath);
        }

        [Fact]
        public void The_config_file_is_passed_when_given()
        {
            var o = Options();
            o.ConfigPath = "/etc/bmadguard/monitor.json";
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, o);
            string exec = d.Content.Split('\n').Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal)).Substring("ExecStart=".Length);
            Assert.Equal(new[] { Exe, "monitor", "--store", Store, "--config", "/etc/bmadguard/monitor.json" }, SystemdSplit(exec));
        }

        [Fact]
        public void The_launchd_plist_is_valid_xml_with_the_program_arguments_and_the_account()
        {
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Launchd, Options());
            var doc = XDocument.Load(XmlReader.Create(new StringReader(d.Content), new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore }));
            Assert.Equal("plist", doc.Root!.Name.LocalName);
            var dict = doc.Root.Element("dict")!;
            var entries = dict.Elements().ToList();
            XElement ValueOf(string key) => entries[entries.FindIndex(e => e.Name == "key" && e.Value == key) + 1];

            Assert.Equal(d.Name, ValueOf("Label").Value);
            Assert.Equal(new[] { Exe, "monitor", "--store", Store }, ValueOf("ProgramArguments").Elements("string").Select(e => e.Value).ToArray());
            Assert.Equal("bmad", ValueOf("UserName").Value);
            Assert.Equal("true", ValueOf("RunAtLoad").Name.LocalName);
            Assert.Equal("/Library/LaunchDaemons/" + d.Name + ".plist", d.InstallPath);
            Assert.StartsWith("com.bmadguard.monitor.", d.Name);
        }

        [Fact]
        public void A_user_launch_agent_has_no_UserName()
        {
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Launchd, Options(system: false));
            Assert.DoesNotContain("<key>UserName</key>", d.Content);
            Assert.Equal(Path.Combine("/home/dev", "Library", "LaunchAgents", d.Name + ".plist"), d.InstallPath);
        }

        [Fact]
        public void The_task_xml_is_valid_and_runs_the_monitor_at_boot_as_the_account_with_restarts()
        {
            var o = Options(store: @"D:\bmad projects\store\", user: @"CORP\svc-bmad");
            o.Executable = @"C:\Program Files\BmadGuard\bmadguard.exe";
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.TaskScheduler, o);
            var doc = XDocument.Parse(d.Content);
            XNamespace ns = "http://schemas.microsoft.com/windows/2004/02/mit/task";
            Assert.Equal(ns + "Task", doc.Root!.Name);
            var exec = doc.Root.Element(ns + "Actions")!.Element(ns + "Exec")!;
            Assert.Equal(o.Executable, exec.Element(ns + "Command")!.Value);
            // CommandLineToArgvW: a trailing backslash before the closing quote is doubled.
            Assert.Equal("monitor --store \"D:\\bmad projects\\store\\\\\"", exec.Element(ns + "Arguments")!.Value);
            Assert.NotNull(doc.Root.Element(ns + "Triggers")!.Element(ns + "BootTrigger"));
            var principal = doc.Root.Element(ns + "Principals")!.Element(ns + "Principal")!;
            Assert.Equal(@"CORP\svc-bmad", principal.Element(ns + "UserId")!.Value);
            Assert.Equal("S4U", principal.Element(ns + "LogonType")!.Value);
            var settings = doc.Root.Element(ns + "Settings")!;
            Assert.Equal("PT0S", settings.Element(ns + "ExecutionTimeLimit")!.Value);
            Assert.NotNull(settings.Element(ns + "RestartOnFailure"));
            Assert.Equal(MonitorTaskTemplates.TaskFolder, d.InstallPath);
        }

        [Theory]
        [InlineData("plain", "plain")]
        [InlineData("two words", "\"two words\"")]
        [InlineData("say \"hi\"", "\"say \\\"hi\\\"\"")]
        [InlineData(@"C:\a b\", "\"C:\\a b\\\\\"")]
        [InlineData("", "\"\"")]
        public void Windows_arguments_are_quoted_by_the_CommandLineToArgvW_rules(string arg, string expected)
            => Assert.Equal(expected, MonitorTaskTemplates.WindowsQuote(arg));

        [Theory]
        [InlineData("relative/store")]
        [InlineData("")]
        [InlineData("/srv/store\nExecStartPre=/bin/rm -rf /")]
        public void A_store_that_is_not_an_absolute_single_line_path_is_refused(string store)
        {
            var ex = Assert.Throws<Core.BmadGuardException>(() => MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options(store: store)));
            Assert.Equal(ErrorCodes.InvalidArgument, ex.Code);
        }

        [Fact]
        public void Each_store_gets_its_own_stable_name()
        {
            string a = MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options(store: "/srv/a")).Name;
            Assert.Equal(a, MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options(store: "/srv/a", user: null)).Name);
            Assert.NotEqual(a, MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options(store: "/srv/b")).Name);
        }

        [Fact]
        public void The_output_object_carries_the_rendered_definition()
        {
            var d = MonitorTaskTemplates.Render(MonitorTaskPlatform.Systemd, Options());
            var o = new BmadGuard.BmadMonitorTaskDefinition(d, Store, "bmad", true);
            Assert.Equal("Systemd", o.Platform);
            Assert.Equal("System", o.Scope);
            Assert.Equal(d.Content, o.Content);
            Assert.Equal(new[] { "monitor", "--store", Store }, o.Arguments);
        }
    }
}

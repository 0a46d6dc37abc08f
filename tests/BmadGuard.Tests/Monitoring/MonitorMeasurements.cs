using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>
    /// Figures for the issue's "Speed" section, reported, never asserted: detection latency and recovery time on a
    /// 100k-event store, and the CPU an idle monitor uses in a minute. Too slow for CI (about two minutes), so it runs
    /// only with BMADGUARD_MEASURE=1:
    /// <c>BMADGUARD_MEASURE=1 dotnet test tests/BmadGuard.Tests --filter "FullyQualifiedName~MonitorMeasurements" --logger "console;verbosity=detailed"</c>
    /// </summary>
    [Collection(MonitoringCollection.Name)]
    public class MonitorMeasurements
    {
        private readonly ITestOutputHelper _out;

        public MonitorMeasurements(ITestOutputHelper output) => _out = output;

        [Fact]
        public void DetectionRecoveryAndIdleCpuOnA100kEventStore()
        {
            if (Environment.GetEnvironmentVariable("BMADGUARD_MEASURE") != "1")
            {
                _out.WriteLine("Not measured: set BMADGUARD_MEASURE=1 to run the monitor measurements.");
                return;
            }

            const int events = 100_000;
            using var dir = new TempDir();
            var build = Stopwatch.StartNew();
            string store = Kit.NewStore(dir, events);
            long bytes = new FileInfo(Kit.Segment(store)).Length;
            _out.WriteLine($"store: {events} events, {bytes / 1024.0 / 1024.0:0.0} MiB, built in {build.Elapsed.TotalSeconds:0.0} s");
            Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\" }");

            using var m = new MonitorProcess("--store", store, "--on-damage", "repair"); // default interval 5 s
            m.WaitReady(store);
            var first = m.Events.First(e => MonitorProcess.Kind(e) == "Checked");
            _out.WriteLine($"deep verify at start: {first.GetProperty("durationMs").GetDouble():0.0} ms for {first.GetProperty("bytesChecked").GetInt64()} bytes");

            // Idle CPU over one minute (after the start-up deep check).
            Thread.Sleep(2000);
            using var proc = Process.GetProcessById(m.Pid);
            var cpu0 = proc.TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            Thread.Sleep(60_000);
            proc.Refresh();
            var cpu = proc.TotalProcessorTime - cpu0;
            _out.WriteLine($"idle monitor: {cpu.TotalMilliseconds:0} ms CPU in {wall.Elapsed.TotalSeconds:0.0} s wall = {100 * cpu.TotalSeconds / wall.Elapsed.TotalSeconds:0.000} % of one core");

            // Detection and recovery: three torn last records (the last 30 bytes gone, as a crash mid-append leaves them), one at a time.
            for (int trial = 1; trial <= 3; trial++)
            {
                var t0 = DateTimeOffset.UtcNow;
                using (var f = new FileStream(Kit.Segment(store), FileMode.Open, FileAccess.Write))
                {
                    f.SetLength(f.Length - 30);
                }

                var detected = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected" && MonitorProcess.Time(e) >= t0, TimeSpan.FromSeconds(60));
                var repaired = m.WaitFor(e => MonitorProcess.Kind(e) == "Repaired" && MonitorProcess.Time(e) >= t0, TimeSpan.FromSeconds(60));
                Assert.True(detected.HasValue && repaired.HasValue, m.StdErr);
                Assert.True(repaired!.Value.GetProperty("verified").GetBoolean());
                _out.WriteLine($"trial {trial}: damage at the end of a {events}-event segment detected after {(MonitorProcess.Time(detected!.Value) - t0).TotalMilliseconds:0} ms; " +
                               $"verified healthy after {(MonitorProcess.Time(repaired.Value) - t0).TotalMilliseconds:0} ms (monitor's own recovery time {repaired.Value.GetProperty("recoveryMs").GetDouble():0.0} ms)");
                Thread.Sleep(1000);
            }

            // Damage inside the log (not repairable by the default healer): detection only.
            var t1 = DateTimeOffset.UtcNow;
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, new FileInfo(segment).Length / 2);
            var mid = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected" && MonitorProcess.Time(e) >= t1, TimeSpan.FromSeconds(60));
            Assert.True(mid.HasValue);
            _out.WriteLine($"damage in the middle of the segment detected after {(MonitorProcess.Time(mid!.Value) - t1).TotalMilliseconds:0} ms (full re-read of the changed segment)");
        }
    }
}

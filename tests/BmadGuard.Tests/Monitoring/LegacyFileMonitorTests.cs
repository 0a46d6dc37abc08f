using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>The monitor on a legacy bus file (issue 10 item 3): damage confirmed under the lock, never a rollback to fewer events, lost events reported.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public sealed class LegacyFileMonitorTests
    {
        private static string Event(int i) => $"    {{\n      \"timestamp\": \"2025-01-01T00:{i / 60 % 60:00}:{i % 60:00}.000000\",\n      \"event\": \"e{i}\",\n      \"data\": {{\n        \"i\": {i}\n      }}\n    }}";

        private static string Bus(IEnumerable<int> events) => "{\n  \"events\": [\n" + string.Join(",\n", events.Select(Event)) + "\n  ]\n}";

        private static int Count(string file) => JsonDocument.Parse(File.ReadAllBytes(file)).RootElement.GetProperty("events").GetArrayLength();

        /// <summary>
        /// The old bus when its temp directory is on another file system: under its lock (which it deletes after
        /// LOCK_UN) it copies the new contents over the file in place: truncate, then write, so 0-byte and half-written
        /// moments exist. It checks after each write that the file never holds fewer events than it last wrote.
        /// </summary>
        private const string InPlaceWriter = @"
import fcntl, json, os, sys, time
from datetime import datetime
path, seconds = sys.argv[1], float(sys.argv[2])
lock = path + '.lock'
end = time.time() + seconds
last = None
rollbacks = 0
writes = 0
while time.time() < end:
    with open(lock, 'w') as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        with open(path) as f:
            doc = json.load(f)
        n = len(doc['events'])
        if last is not None and n < last:
            rollbacks += 1
            print('ROLLBACK %d -> %d' % (last, n), flush=True)
        doc['events'].append({'timestamp': datetime.now().isoformat(), 'event': 'py_event', 'data': {'i': n}})
        text = json.dumps(doc, indent=2)
        with open(path, 'r+') as f:
            f.truncate(0)
            f.flush()
            time.sleep(0.002)
            f.write(text[:len(text) // 2])
            f.flush()
            time.sleep(0.002)
            f.write(text[len(text) // 2:])
        last = n + 1
        writes += 1
        fcntl.flock(lf, fcntl.LOCK_UN)
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
    time.sleep(0.001)
print('done %d %d %d' % (writes, last or 0, rollbacks), flush=True)
";

        [Fact]
        public void BesideAnInPlaceCopyingWriterTheMonitorNeverRollsTheFileBack()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Directory.CreateDirectory(store);
            string file = dir.Combine("shared_context.json");
            File.WriteAllText(file, Bus(Enumerable.Range(0, 5)));
            var guarded = new GuardedFile(file, store);
            Assert.True(guarded.Check(CancellationToken.None).Ok); // the first known-good copy

            string script = dir.Combine("writer.py");
            File.WriteAllText(script, InPlaceWriter);
            var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(file);
            psi.ArgumentList.Add("4");
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEndAsync();

            int checks = 0, heals = 0;
            var healMessages = new List<string>();
            while (!p.HasExited)
            {
                var result = guarded.Check(CancellationToken.None);
                checks++;
                if (result.Findings.Any(f => f.Kind == FindingKind.InvalidJson || f.Kind == FindingKind.Missing))
                {
                    var heal = guarded.Restore(CancellationToken.None);
                    if (heal.Outcome == HealOutcome.Healed)
                    {
                        heals++;
                        healMessages.Add(heal.Message);
                    }
                }
            }

            Assert.True(p.WaitForExit(30_000));
            string text = output.Result;
            Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
            Assert.DoesNotContain("ROLLBACK", text);
            var done = text.Split('\n').Single(l => l.StartsWith("done ", StringComparison.Ordinal)).Split(' ');
            int writes = int.Parse(done[1]);
            Assert.True(writes > 10, text);
            Assert.Equal(int.Parse(done[2]), Count(file));
            Assert.True(heals == 0, $"{heals} heals of transient states in {checks} checks: {string.Join(" | ", healMessages.Take(3))}");
        }

        /// <summary>Damage in a file with more events than the known-good copy: the heal keeps every complete event (salvage + union), never the copy alone.</summary>
        [Fact]
        public void HealKeepsEveryCompleteEventOfTheDamagedFileAndTheCopysEventsItLacks()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Directory.CreateDirectory(store);
            string file = dir.Combine("shared_context.json");
            File.WriteAllText(file, Bus(Enumerable.Range(0, 10)));
            var guarded = new GuardedFile(file, store);
            Assert.True(guarded.Check(CancellationToken.None).Ok); // known-good: events 0..9
            // Later the file holds events 3..29 (0..2 lost), then a writer dies half-way through event 30.
            string later = Bus(Enumerable.Range(3, 28));
            File.WriteAllText(file, later.Substring(0, later.Length - 40));
            var result = guarded.Check(CancellationToken.None);
            Assert.False(result.Ok);
            var heal = guarded.Restore(CancellationToken.None);
            Assert.Equal(HealOutcome.Healed, heal.Outcome);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var names = doc.RootElement.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("event").GetString()).ToList();
            Assert.Equal(Enumerable.Range(0, 30).Select(i => "e" + i), names);
            Assert.Single(Directory.GetFiles(Path.Combine(store, "quarantine")));
        }

        /// <summary>A valid bus file that holds fewer events than the monitor saw before is reported (a high-water mark, as for stores).</summary>
        [Fact]
        public void AFileThatLostEventsSinceTheMonitorLastSawItIsReported()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Directory.CreateDirectory(store);
            string file = dir.Combine("shared_context.json");
            File.WriteAllText(file, Bus(Enumerable.Range(0, 20)));
            Assert.True(new GuardedFile(file, store).Check(CancellationToken.None).Ok);
            // The bus's recovery wrote {"events": []} or an old copy: still valid JSON, but 18 events are gone.
            File.WriteAllText(file, Bus(Enumerable.Range(0, 2)));
            var result = new GuardedFile(file, store).Check(CancellationToken.None); // a new monitor process: the mark is kept on disk
            var lost = Assert.Single(result.Findings);
            Assert.Equal("LegacyEventsLost", lost.Kind.ToString());
            Assert.Contains("18 fewer", lost.Message);
        }
    }
}

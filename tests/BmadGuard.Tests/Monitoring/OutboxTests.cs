using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Outbox;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Monitoring
{
    [Collection(MonitoringCollection.Name)]
    public class OutboxTests
    {
        private readonly ITestOutputHelper _out;

        public OutboxTests(ITestOutputHelper output) => _out = output;

        /// <summary>Another process holding the writers' lock (flock, like a legacy Python agent) until its stdin closes.</summary>
        private sealed class LockHolder : IDisposable
        {
            private readonly Process _p;

            public LockHolder(string lockPath)
            {
                var psi = new ProcessStartInfo(SmtpSink.Python) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add("import fcntl,sys\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('LOCKED',flush=True)\nsys.stdin.read()");
                psi.ArgumentList.Add(lockPath);
                _p = Process.Start(psi)!;
                Assert.Equal("LOCKED", _p.StandardOutput.ReadLine());
            }

            public void Dispose()
            {
                _p.StandardInput.Close();
                _p.WaitForExit(10_000);
                _p.Dispose();
            }
        }

        private static EventDraft Draft(int n) => EventDraft.FromJson("outbox.test", "tester", null, "{\"n\":" + n + "}");

        private static List<int> Ns(string store)
        {
            using var s = FileEventStore.Open(store);
            return s.Read(new EventQuery { Type = "outbox.test" }).Select(e => JsonDocument.Parse(e.DataJson).RootElement.GetProperty("n").GetInt32()).ToList();
        }

        [Fact]
        public void EventsRefusedByALockedStoreAreSpooledThenReplayedOnceInOrder()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            var fast = new StoreOpenOptions { LockTimeout = TimeSpan.FromMilliseconds(200) };
            using (new LockHolder(Path.Combine(store, StorePaths.LockFileName)))
            {
                for (int batch = 0; batch < 3; batch++)
                {
                    var drafts = Enumerable.Range(batch * 5 + 1, 5).Select(Draft).ToList();
                    var r = PublishOrSpool.Run(store, drafts, fast);
                    Assert.Equal(PublishStatus.Spooled, r.Status);
                    Assert.Equal(ErrorCodes.LockTimeout, r.ReasonCode);
                    Assert.Equal(5, r.Spooled.Count);
                }

                Assert.Empty(Ns(store));
            }

            var outbox = new EventOutbox(store);
            Assert.Equal(15, outbox.PendingCount());
            using (var s = FileEventStore.Open(store))
            {
                var replay = outbox.Replay(s);
                Assert.Equal(15, replay.Published);
                Assert.Equal(0, replay.Pending);
                var again = outbox.Replay(s);
                Assert.Equal(0, again.Published);
            }

            Assert.Equal(Enumerable.Range(1, 15), Ns(store));

            // Back to normal: published directly.
            var direct = PublishOrSpool.Run(store, new[] { Draft(16) }, fast);
            Assert.Equal(PublishStatus.Published, direct.Status);
            Assert.Equal(Enumerable.Range(1, 16), Ns(store));
        }

        [Fact]
        public void InvalidEventsAreNeitherPublishedNorSpooled()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            using (new LockHolder(Path.Combine(store, StorePaths.LockFileName)))
            {
                var ex = Assert.Throws<BmadGuardException>(() => PublishOrSpool.Run(store, new[] { Draft(1), EventDraft.FromJson("bad type!", null, null, "{}") }, new StoreOpenOptions { LockTimeout = TimeSpan.FromMilliseconds(100) }));
                Assert.Equal(ErrorCodes.InvalidEventType, ex.Code);
            }

            Assert.Equal(0, new EventOutbox(store).PendingCount());
        }

        /// <summary>
        /// A replay that crashed after the in-flight marker was made durable and after the store took the first 4
        /// events of the batch: the next replay publishes the other 6, once, in order.
        /// </summary>
        [Fact]
        public void ReplayAfterACrashInTheMiddleOfABatchPublishesEachEventExactlyOnce()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 3); // events of another type already in the store
            using (new LockHolder(Path.Combine(store, StorePaths.LockFileName)))
            {
                PublishOrSpool.Run(store, Enumerable.Range(1, 10).Select(Draft).ToList(), new StoreOpenOptions { LockTimeout = TimeSpan.FromMilliseconds(200) });
            }

            string spool = Path.Combine(store, "outbox", EventOutbox.SpoolFileName);
            var lines = File.ReadAllLines(spool).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.Equal(10, lines.Count);

            // What the crashed replay did: marker durable ("in flight 1..10, store was at seq 3"), then 4 published.
            File.WriteAllText(Path.Combine(store, "outbox", EventOutbox.MarkerFileName),
                $"{{\"acked\":0,\"ackedOffset\":0,\"inFlight\":{{\"from\":1,\"to\":10,\"endOffset\":{new FileInfo(spool).Length},\"storeSeqBefore\":3}}}}");
            using (var s = FileEventStore.Open(store))
            {
                s.PublishWithIds(lines.Take(4).Select(l => (Draft(JsonDocument.Parse(l.GetProperty("data").GetRawText()).RootElement.GetProperty("n").GetInt32()), (string?)l.GetProperty("id").GetString())).ToList(), false);
                // ...and a stranger published in between (the log is shared).
                s.Publish(EventDraft.FromJson("other.thing", null, null, "{}"));
                var r = new EventOutbox(store).Replay(s);
                Assert.Equal(6, r.Published);
                Assert.Equal(4, r.AlreadyInStore);
                Assert.Equal(0, r.Pending);
                var ids = s.Read(new EventQuery { Type = "outbox.test" }).Select(e => e.Id).ToList();
                Assert.Equal(lines.Select(l => l.GetProperty("id").GetString()), ids); // every spooled id once, in outbox order
            }

            Assert.Equal(Enumerable.Range(1, 10), Ns(store));
        }

        /// <summary>
        /// A real full disk: a small tmpfs. The store refuses (StoreFull), publish --spool spools anyway (the outbox
        /// gives back some of its reserve), space is freed, the monitor replays: every event once, in order.
        /// </summary>
        [Fact]
        public void FullDiskEventsAreSpooledAndReplayedByTheMonitorOnceInOrder()
        {
            using var dir = new TempDir();
            string mount = dir.Combine("tmpfs");
            Directory.CreateDirectory(mount);
            if (!Mount(mount, out string why))
            {
                _out.WriteLine("SKIPPED: cannot mount a tmpfs here (" + why + "); the full-disk outbox test needs root or CAP_SYS_ADMIN.");
                return;
            }

            try
            {
                string store = Path.Combine(mount, "store");
                Assert.Equal(0, Support.Cli.Run("init", "--store", store).ExitCode);
                // A 2 MiB disk is under the reserve's default 64 MiB free-space floor: this test is about spooling on a
                // full disk with a reserve, so it lowers the floor to 0 (the floor has its own tests in MonitorFullDiskTests).
                Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\", \"outbox\": { \"reserveBytes\": 262144, \"reserveFloorBytes\": 0 } }");
                Assert.Equal(0, Support.Cli.Run("monitor", "--store", store, "--once").ExitCode); // creates the outbox and its reserve
                Assert.Equal(262144, new FileInfo(Path.Combine(store, "outbox", EventOutbox.ReserveFileName)).Length);

                string filler = Path.Combine(mount, "filler");
                FillDisk(filler);
                // The first events may still fit in the segment's last allocated page; then the store is full and
                // events are spooled. A spool that took space from the reserve lets the next call replay the outbox
                // first (order kept), so results alternate; what matters is the end state.
                var spooled = new List<string>();
                int n = 0;
                        while (spooled.Count < 8 && n < 100)
                {
                    n++;
                    var r = Support.Cli.Run("publish", "--store", store, "--spool", "--type", "outbox.test", "--data", "{\"n\":" + n + "}");
                    Assert.True(r.ExitCode == 0, r.StdErr);
                    using var doc = JsonDocument.Parse(r.StdOut);
                    bool lastSpooled = doc.RootElement.TryGetProperty("spooled", out var sp) && sp.GetBoolean();
                    if (lastSpooled)
                    {
                        Assert.Equal("StoreFull", doc.RootElement.GetProperty("reason").GetString());
                        spooled.Add(doc.RootElement.GetProperty("id").GetString()!);
                        FillDisk(filler + "." + n); // take back what the outbox gave up from its reserve: still full
                    }
                }

                int pending = new EventOutbox(store).PendingCount();
                _out.WriteLine($"{n} published, {spooled.Count} of them spooled; {pending} pending when space was freed");
                Assert.Equal(8, spooled.Count);
                Assert.Equal(8, pending); // the store stayed full: nothing could be replayed yet
                var health = Support.Cli.Run("health", "--store", store);
                Assert.Contains($"\"pending\": {pending}", health.StdOut);

                foreach (var f in Directory.GetFiles(mount, "filler*"))
                {
                    File.Delete(f);
                }
                var once = Support.Cli.Run("monitor", "--store", store, "--once");
                Assert.True(once.ExitCode == 0, once.StdErr);
                Assert.Contains("\"event\":\"OutboxReplayed\"", once.StdOut);
                Assert.Equal(Enumerable.Range(1, n), Ns(store));
                using (var s = FileEventStore.Open(store))
                {
                    var ids = s.Read(new EventQuery { Type = "outbox.test" }).Select(e => e.Id).ToList();
                    Assert.All(spooled, id => Assert.Single(ids, id));
                }

                // A second pass replays nothing more.
                Assert.Equal(0, Support.Cli.Run("monitor", "--store", store, "--once").ExitCode);
                Assert.Equal(Enumerable.Range(1, n), Ns(store));
            }
            finally
            {
                Umount(mount);
            }
        }

        private static void FillDisk(string path)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
            var block = new byte[4096];
            try
            {
                while (true)
                {
                    fs.Write(block, 0, block.Length);
                }
            }
            catch (IOException)
            {
            }

            try
            {
                fs.Flush(true);
            }
            catch (IOException)
            {
            }
        }

        private static bool Mount(string path, out string why)
        {
            var r = RunTool("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", path);
            why = r.Err.Trim();
            return r.Code == 0;
        }

        private static void Umount(string path) => RunTool("umount", path);

        private static (int Code, string Err) RunTool(string file, params string[] args)
        {
            try
            {
                var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var a in args)
                {
                    psi.ArgumentList.Add(a);
                }

                using var p = Process.Start(psi)!;
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                return (p.ExitCode, err);
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                return (-1, ex.Message);
            }
        }
    }
}

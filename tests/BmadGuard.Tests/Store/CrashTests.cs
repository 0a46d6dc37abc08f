using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Store
{
    /// <summary>kill -9 of real publishing processes, and hand-made torn tails.</summary>
    [Collection("StoreProcesses")]
    public sealed class CrashTests
    {
        private readonly ITestOutputHelper _output;

        public CrashTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public async Task Killing_publishers_at_random_moments_never_loses_or_duplicates_an_acknowledged_event()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            // Small segments, so kills also land around rollovers.
            StoreInspector.Init(store, "--segment-max-bytes", "32768", "--max-event-bytes", "8192");

            var rng = new Random(20261122);
            var acked = new Dictionary<string, Ack>(); // by marker
            var rogueFragments = new List<byte[]>();
            int rounds = 14, kills = 0, tornTails = 0, killedMidBatch = 0;
            var clock = Stopwatch.StartNew();
            for (int round = 0; round < rounds; round++)
            {
                var procs = new List<(CliProcess P, Task Feeder)>();
                // Two --stdin writers: one pours a large batch, one trickles small ones.
                for (int w = 0; w < 2; w++)
                {
                    var p = CliProcess.Start(true, "publish", "--store", store, "--stdin", "--lock-timeout", "30");
                    string prefix = $"r{round:D2}-b{w}";
                    bool trickle = w == 1;
                    int padBase = rng.Next(0, 3000);
                    var feeder = Task.Run(() =>
                    {
                        try
                        {
                            for (int i = 0; i < 4000; i++)
                            {
                                string pad = new string('p', (padBase + (i * 131)) % 3000);
                                p.StdIn.Write($"{{\"type\":\"crash.batch\",\"source\":\"w{w}\",\"data\":{{\"marker\":\"{prefix}-{i:D5}\",\"pad\":\"{pad}\"}}}}\n");
                                if (!trickle || i % 3 == 0)
                                {
                                    p.StdIn.Flush();
                                }

                                if (trickle && i % 3 == 0)
                                {
                                    Thread.Sleep(1);
                                }
                            }

                            p.StdIn.Close();
                        }
                        catch (IOException)
                        {
                            // the process was killed: its stdin pipe is gone
                        }
                    });
                    procs.Add((p, feeder));
                }

                // A single publish, killed at its own random moment.
                var single = CliProcess.Start(false, "publish", "--store", store, "--type", "crash.single", "--source", "s",
                    "--data", $"{{\"marker\":\"r{round:D2}-s\"}}", "--lock-timeout", "30");
                procs.Add((single, Task.CompletedTask));

                // Every other round, a foreign writer (Python, flock on writer.lock as the format document says)
                // appends part of a record and is killed holding the lock, while the others wait for it.
                Task rogue = Task.CompletedTask;
                if (round % 2 == 1)
                {
                    byte[] fragment = RogueFragment(rng, round);
                    rogueFragments.Add(fragment);
                    int delay = rng.Next(0, 400);
                    rogue = Task.Run(async () =>
                    {
                        await Task.Delay(delay);
                        using var py = RogueWriter.Start(store, fragment);
                        Assert.True(py.WaitForAppended(), "the rogue writer did not append: " + py.StdErr);
                        await Task.Delay(rng.Next(0, 300)); // the other writers queue on the lock meanwhile
                        py.Kill();
                        py.Wait();
                    });
                }

                // Kill each at a random moment between startup and well into its publishing.
                var killers = procs.Select(x => Task.Run(async () =>
                {
                    await Task.Delay(rng.Next(60, 900));
                    if (!x.P.Process.HasExited)
                    {
                        x.P.Kill();
                    }
                })).ToArray();
                await Task.WhenAll(killers);
                await rogue;
                foreach (var (p, feeder) in procs)
                {
                    int rc = p.Wait();
                    await feeder;
                    if (p.Killed)
                    {
                        kills++;
                        if (p.Lines().Count > 0)
                        {
                            killedMidBatch++;
                        }
                    }
                    else
                    {
                        Assert.True(rc == 0, $"exit {rc}: {p.StdErr}");
                    }

                    foreach (var a in p.Acks())
                    {
                        Assert.True(acked.TryAdd(a.Marker, a), $"{a.Marker} acknowledged twice");
                    }

                    p.Dispose();
                }

                // Before anyone opens the store: what does the disk hold?
                var before = StoreInspector.Scan(store);
                Assert.True(before.Problems.Count == 0, "damage beyond a torn tail: " + string.Join("; ", before.Problems));
                byte[]? tornBytes = null;
                byte[]? segmentBefore = null;
                if (before.TornBytes > 0)
                {
                    tornTails++;
                    segmentBefore = File.ReadAllBytes(before.TornSegment!);
                    tornBytes = segmentBefore.AsSpan((int)before.TornOffset).ToArray();
                }

                // Opening the store (bmadguard get) repairs the tail and reports it; a full read succeeds.
                var get = Support.Cli.Run("get", "--store", store);
                Assert.True(get.ExitCode == 0, $"get exited {get.ExitCode}: {get.StdErr}");
                if (tornBytes != null)
                {
                    AssertTornTailQuarantined(get.StdErr, before.TornSegment!, before.TornOffset, tornBytes, segmentBefore!);
                }
                else
                {
                    Assert.DoesNotContain("TornTailRepaired", get.StdErr);
                }

                var records = StoreInspector.AssertClean(store);
                Assert.Equal(records.Select(r => r.EventJson), get.Lines);

                // Every fragment a killed foreign writer left was cut by whoever took the lock next, and is kept whole in quarantine/.
                var quarantined = Directory.GetFiles(Path.Combine(store, "quarantine")).Select(File.ReadAllBytes).ToList();
                // (At least once: a writer killed between its quarantine copy and the cut leaves the next one to copy again.)
                foreach (var fragment in rogueFragments)
                {
                    Assert.Contains(quarantined, q => q.AsSpan().SequenceEqual(fragment));
                }

                var byMarker = records.GroupBy(r => r.Marker!).ToDictionary(g => g.Key, g => g.ToList());
                Assert.True(byMarker.All(g => g.Value.Count == 1), "an event is stored twice");
                foreach (var a in acked.Values)
                {
                    Assert.True(byMarker.TryGetValue(a.Marker, out var stored), $"acknowledged event {a.Marker} (seq {a.Seq}) is lost");
                    Assert.Equal(a.Line, stored![0].EventJson);
                }
            }

            _output.WriteLine($"{rounds} rounds in {clock.Elapsed.TotalSeconds:0.0} s: {kills} processes killed ({killedMidBatch} after acknowledging some events), " +
                              $"{tornTails} torn tails repaired, {acked.Count} acknowledged events all present once.");
            Assert.True(kills >= rounds, "the test should kill publishers mid-flight");
        }

        private static byte[] RogueFragment(Random rng, int round)
        {
            string record = $"{{\"seq\":{round + 1000},\"id\":\"rogue-{round}\",\"timestamp\":\"2026-11-22T00:00:00.0000000+00:00\",\"type\":\"rogue\",\"source\":\"py\",\"correlationId\":null,\"data\":{{\"marker\":\"rogue-{round}\"}},\"crc\":\"00000000\"}}\n";
            byte[] bytes = Encoding.UTF8.GetBytes(record);
            return rng.Next(3) == 0 ? new byte[rng.Next(1, 9000)] : bytes.AsSpan(0, rng.Next(1, bytes.Length - 1)).ToArray();
        }

        /// <summary>The notice names the quarantine file, which holds exactly the torn bytes; the segment keeps everything before them.</summary>
        private static void AssertTornTailQuarantined(string stderr, string segment, long offset, byte[] tornBytes, byte[] segmentBefore)
        {
            string? notice = stderr.Split('\n').FirstOrDefault(l => l.StartsWith("bmadguard: notice: TornTailRepaired:", StringComparison.Ordinal));
            Assert.True(notice != null, "no TornTailRepaired notice on stderr: " + stderr);
            Assert.Contains(segment, notice);
            Assert.Contains($"{tornBytes.Length} bytes at offset {offset}", notice);
            string quarantinePath = notice!.Substring(notice.LastIndexOf("the bytes are in '", StringComparison.Ordinal) + "the bytes are in '".Length);
            quarantinePath = quarantinePath.Substring(0, quarantinePath.IndexOf('\'', StringComparison.Ordinal));
            Assert.StartsWith(Path.GetDirectoryName(Path.GetDirectoryName(segment))!, quarantinePath);
            Assert.Equal(tornBytes, File.ReadAllBytes(quarantinePath));
            byte[] after = File.ReadAllBytes(segment);
            Assert.True(after.Length >= offset, "the segment was cut before the torn tail");
            Assert.True(after.AsSpan(0, (int)offset).SequenceEqual(segmentBefore.AsSpan(0, (int)offset)), "bytes before the torn tail changed");
        }

        public static IEnumerable<object[]> TornTails()
        {
            yield return new object[] { "half a record", new Func<byte[], byte[]>(full => full.AsSpan(0, full.Length / 2).ToArray()) };
            yield return new object[] { "a record without its newline", new Func<byte[], byte[]>(full => full.AsSpan(0, full.Length - 1).ToArray()) };
            yield return new object[] { "zeros", new Func<byte[], byte[]>(_ => new byte[4096]) };
            yield return new object[] { "zeros with a newline", new Func<byte[], byte[]>(_ => Enumerable.Repeat((byte)0, 100).Append((byte)'\n').Concat(new byte[50]).ToArray()) };
            yield return new object[] { "a full line with a zeroed page in it", new Func<byte[], byte[]>(full =>
            {
                var b = (byte[])full.Clone();
                Array.Clear(b, 10, 20); // a power loss: an unsynced page came back as zeros
                return b;
            }) };
        }

        /// <summary>Where one bit of the last record flips: in its data, in its seq (a digit becomes a letter), in its checksum trailer.</summary>
        public static IEnumerable<object[]> LastRecordFlips()
        {
            // (segment bytes, where the last record starts) -> (byte index, bit mask)
            yield return new object[] { "data", new Func<byte[], int, (int, byte)>((b, start) =>
                (start + Encoding.UTF8.GetString(b, start, b.Length - start).IndexOf("\"m5\"", StringComparison.Ordinal) + 2, 0x02)) }; // "m5" -> "o5"
            yield return new object[] { "seq digit", new Func<byte[], int, (int, byte)>((b, start) => (start + "{\"seq\":".Length, 0x40)) }; // '5' -> 'u'
            yield return new object[] { "trailer", new Func<byte[], int, (int, byte)>((b, start) => (b.Length - 3, 0x01)) }; // the checksum's closing '"' -> '#'
        }

        [Theory]
        [MemberData(nameof(LastRecordFlips))]
        public void A_complete_last_record_with_a_changed_byte_is_damage_kept_in_place_and_its_seq_is_never_reused(string where, Func<byte[], int, (int Index, byte Mask)> flip)
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            for (int i = 1; i <= 5; i++)
            {
                Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "flip.test", "--data", $"{{\"marker\":\"m{i}\"}}").ExitCode);
            }

            // A consumer has read all five, the fifth included.
            Assert.Equal(5, Support.Cli.Run("get", "--store", store, "--consumer", "qa").Lines.Length);

            // Then one bit of the fifth record flips on disk.
            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            byte[] flipped = File.ReadAllBytes(segment);
            int fifth = Array.LastIndexOf(flipped, (byte)'\n', flipped.Length - 2) + 1;
            var (index, mask) = flip(flipped, fifth);
            flipped[index] ^= mask; // one bit: same length, still a terminated line
            Assert.True(index > fifth && index < flipped.Length - 1, where);
            File.WriteAllBytes(segment, flipped);

            // A writer refuses (it would otherwise cut the record and give seq 5 to a new event that qa would skip).
            var publish = Support.Cli.Run("publish", "--store", store, "--type", "flip.test", "--data", "{\"marker\":\"m6\"}");
            Assert.Equal(1, publish.ExitCode);
            Assert.Contains("StoreDamaged", publish.StdErr);
            Assert.Contains($"'{segment}' at byte {fifth}", publish.StdErr);
            Assert.Contains("complete but fails its checksum", publish.StdErr);
            Assert.Equal(flipped, File.ReadAllBytes(segment));
            Assert.False(Directory.Exists(Path.Combine(store, "quarantine")) && Directory.EnumerateFiles(Path.Combine(store, "quarantine")).Any());

            // A reader gets the four good events, then the damage, named.
            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal(1, get.ExitCode);
            Assert.Equal(4, get.Lines.Length);
            Assert.Contains($"at byte {fifth}", get.StdErr);

            // Test-BmadIntegrity: an error naming the seq, not a torn-tail warning.
            var report = Core.Integrity.StoreVerifier.Verify(store, new Core.Integrity.StoreVerifyOptions { IncludeRegisteredChecks = false });
            Assert.False(report.Healthy);
            Assert.DoesNotContain(report.Findings, f => f.Code == Core.Integrity.FindingCodes.TornTail);
            var damaged = Assert.Single(report.Findings, f => f.Code == Core.Integrity.FindingCodes.RecordDamaged);
            Assert.Equal(fifth, damaged.Offset);
            Assert.Contains("seqs 5", damaged.Message);

            // Repair without a backup: the bytes go to quarantine whole, seq 5 becomes a bmadguard.lost placeholder.
            var repair = Support.Cli.Run("repair", "--store", store);
            Assert.True(repair.ExitCode == 0, repair.StdOut + repair.StdErr);
            string quarantined = Directory.GetFiles(Path.Combine(store, "quarantine")).Single();
            Assert.Equal(flipped, File.ReadAllBytes(quarantined));
            var records = StoreInspector.AssertClean(store);
            Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, records.Select(r => r.Seq));
            Assert.Equal(Core.Integrity.StoreRepair.LostEventType, records[4].Type);

            // The store takes events again from seq 6, and qa (at seq 5) gets the new one: nothing skipped.
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "flip.test", "--data", "{\"marker\":\"m6\"}").ExitCode);
            var qa = Support.Cli.Run("get", "--store", store, "--consumer", "qa");
            Assert.Equal(0, qa.ExitCode);
            Assert.Contains("\"seq\":6", Assert.Single(qa.Lines));
        }

        [Theory]
        [MemberData(nameof(TornTails))]
        public void A_hand_made_torn_tail_is_quarantined_exactly_and_named(string what, Func<byte[], byte[]> makeTail)
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = FileEventStore.Initialize(store, null, null, out _))
            {
                for (int i = 0; i < 5; i++)
                {
                    s.Publish(Core.Events.EventDraft.FromJson("torn.test", "t", null, $"{{\"marker\":\"m{i}\"}}"));
                }
            }

            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            byte[] clean = File.ReadAllBytes(segment);
            // A would-be sixth record, as a writer would have produced it.
            int lastLineStart = Array.LastIndexOf(clean, (byte)'\n', clean.Length - 2) + 1;
            byte[] fullRecord = clean.AsSpan(lastLineStart).ToArray();
            byte[] tail = makeTail(fullRecord);
            File.WriteAllBytes(segment, clean.Concat(tail).ToArray());

            var get = Support.Cli.Run("get", "--store", store);
            Assert.True(get.ExitCode == 0, what + ": " + get.StdErr);
            Assert.Equal(5, get.Lines.Length);
            AssertTornTailQuarantined(get.StdErr, segment, clean.Length, tail, clean);
            Assert.Equal(clean, File.ReadAllBytes(segment)); // otherwise untouched
            Assert.Single(Directory.GetFiles(Path.Combine(store, "quarantine")));

            // In Core the notice carries the same facts; a second open finds nothing to repair.
            using (var s = FileEventStore.Open(store))
            {
                Assert.Empty(s.Notices);
                Assert.Equal(5, s.Read(new EventQuery()).Count());
            }

            // The store takes new events right after the cut.
            var pub = Support.Cli.Run("publish", "--store", store, "--type", "torn.test", "--data", "{\"marker\":\"m5\"}");
            Assert.Equal(0, pub.ExitCode);
            Assert.Equal(6, StoreInspector.AssertClean(store).Count);
        }

        [Fact]
        public void A_publisher_that_cuts_a_torn_tail_left_while_it_waited_for_the_lock_reports_it()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "torn.test", "--data", "{\"marker\":\"m0\"}").ExitCode);
            byte[] fragment = Encoding.UTF8.GetBytes("{\"seq\":2,\"id\":\"killed-mid-append");

            using var rogue = RogueWriter.Start(store, fragment, waitForGo: true);
            Assert.True(rogue.WaitForLocked(), rogue.StdErr);
            // The publisher opens a clean store, then queues on the lock the Python writer holds.
            using var publisher = CliProcess.Start(false, "publish", "--store", store, "--type", "torn.test", "--data", "{\"marker\":\"m1\"}", "--lock-timeout", "60");
            Thread.Sleep(1500);
            rogue.Go();
            Assert.True(rogue.WaitForAppended(), rogue.StdErr);
            rogue.Kill(); // dies mid-append, holding the lock: the OS releases it
            rogue.Wait();

            Assert.True(publisher.Wait() == 0, publisher.StdErr);
            Assert.Equal("m1", Assert.Single(publisher.Acks()).Marker);
            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            string quarantined = Assert.Single(Directory.GetFiles(Path.Combine(store, "quarantine")));
            Assert.Equal(fragment, File.ReadAllBytes(quarantined));
            Assert.Contains("bmadguard: notice: TornTailRepaired:", publisher.StdErr);
            Assert.Contains(quarantined, publisher.StdErr);
            Assert.Contains(segment, publisher.StdErr);
            Assert.Equal(new[] { "m0", "m1" }, StoreInspector.AssertClean(store).Select(r => r.Marker));
        }

        [Fact]
        public void Test_BmadIntegrity_says_whether_a_torn_tail_was_confirmed_under_the_writers_lock()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "torn.test", "--data", "{\"marker\":\"m0\"}").ExitCode);
            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            long clean = new FileInfo(segment).Length;
            byte[] fragment = Encoding.UTF8.GetBytes("{\"seq\":2,\"id\":\"still-appending");

            // A Python writer holds the lock with half a record written: the check cannot tell, and says so.
            using var rogue = RogueWriter.Start(store, fragment);
            Assert.True(rogue.WaitForAppended(), rogue.StdErr);
            var options = new Core.Integrity.StoreVerifyOptions { IncludeRegisteredChecks = false, ConfirmLockTimeout = TimeSpan.FromMilliseconds(300) };
            var busy = Core.Integrity.StoreVerifier.Verify(store, options);
            var unconfirmed = Assert.Single(busy.Findings, f => f.Code == Core.Integrity.FindingCodes.TornTail);
            Assert.Equal(clean, unconfirmed.Offset);
            Assert.Equal(fragment.Length, unconfirmed.Length);
            Assert.Contains("not confirmed under the writers' lock", unconfirmed.Message);

            // The writer dies mid-append; the OS frees its lock: now the check can be sure it is a torn tail.
            rogue.Kill();
            rogue.Wait();
            var dead = Core.Integrity.StoreVerifier.Verify(store, options);
            var confirmed = Assert.Single(dead.Findings, f => f.Code == Core.Integrity.FindingCodes.TornTail);
            Assert.Contains("looked at again holding the writers' lock", confirmed.Message);
            Assert.Equal(clean + fragment.Length, new FileInfo(segment).Length); // the check changes nothing
        }

        [Fact]
        public void Damage_before_the_last_record_is_an_error_naming_file_and_offset_not_a_repair()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = FileEventStore.Initialize(store, null, null, out _))
            {
                for (int i = 0; i < 3; i++)
                {
                    s.Publish(Core.Events.EventDraft.FromJson("torn.test", "t", null, $"{{\"marker\":\"m{i}\"}}"));
                }
            }

            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            byte[] bytes = File.ReadAllBytes(segment);
            int secondRecord = Array.IndexOf(bytes, (byte)'\n', Array.IndexOf(bytes, (byte)'\n') + 1) + 1;
            bytes[secondRecord + 30] ^= 0x20; // flip a bit inside record 2 of 3
            File.WriteAllBytes(segment, bytes);

            // The reader delivers the intact events around it (seqs 1 and 3) and names the damaged seq (exit 1).
            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal(1, get.ExitCode);
            Assert.Equal(2, get.Lines.Length);
            Assert.StartsWith("bmadguard: DamagedRecord:", get.StdErr);
            Assert.Contains("seq 2 ", get.StdErr);
            Assert.Contains(segment, get.StdErr);
            Assert.Contains($"at byte {secondRecord}", get.StdErr);
            Assert.Equal(bytes, File.ReadAllBytes(segment)); // nothing was "repaired" away
            Assert.Empty(Directory.GetFiles(Path.Combine(store, "quarantine")));
        }
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Store
{
    using Cli = BmadGuard.Tests.Support.Cli;

    /// <summary>The tests that start many bmadguard processes run alone, so they do not starve each other on 2 cores.</summary>
    [CollectionDefinition("StoreProcesses", DisableParallelization = true)]
    public sealed class StoreProcessesCollection
    {
    }

    [Collection("StoreProcesses")]
    public sealed class ConcurrencyTests
    {
        private readonly ITestOutputHelper _output;

        public ConcurrencyTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public async Task Several_publishing_processes_at_once_give_exactly_the_expected_events()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store, "--segment-max-bytes", "65536", "--max-event-bytes", "16384");

            const int BatchWriters = 3, BatchSize = 300, SingleWriters = 2, Singles = 10;
            var expected = new HashSet<string>();
            var allAcks = new List<(string Writer, List<Ack> Acks)>();
            var start = new ManualResetEventSlim(false);
            var tasks = new List<Task>();

            for (int w = 0; w < BatchWriters; w++)
            {
                string writer = "batch" + w;
                var lines = new List<string>();
                for (int i = 0; i < BatchSize; i++)
                {
                    string marker = $"{writer}-{i:D4}";
                    expected.Add(marker);
                    // Mixed sizes so records straddle write boundaries and segments roll over mid-batch.
                    string pad = new string('x', (i * 37) % 700);
                    lines.Add($"{{\"type\":\"test.batch\",\"source\":\"{writer}\",\"data\":{{\"marker\":\"{marker}\",\"pad\":\"{pad}\",\"text\":\"é ü 日本\"}}}}");
                }

                // Writers feed their stdin in small chunks, so each makes many small batches (many lock
                // round trips) that interleave with the other writers'; one sends one large batch at once.
                bool trickle = w > 0;
                tasks.Add(Task.Run(() =>
                {
                    start.Wait();
                    using var p = CliProcess.Start(true, "publish", "--store", store, "--stdin", "--lock-timeout", "60");
                    int chunk = BatchSize;
                    for (int i = 0; i < lines.Count; i += chunk)
                    {
                        chunk = trickle ? 1 + (i % 4) : BatchSize;
                        foreach (string l in lines.Skip(i).Take(chunk))
                        {
                            p.StdIn.Write(l + "\n");
                        }

                        p.StdIn.Flush();
                        if (trickle)
                        {
                            Thread.Sleep(1);
                        }
                    }

                    p.StdIn.Close();
                    int rc = p.Wait();
                    Assert.True(rc == 0, $"{writer} exited {rc}: {p.StdErr}");
                    lock (allAcks)
                    {
                        allAcks.Add((writer, p.Acks()));
                    }
                }));
            }

            for (int w = 0; w < SingleWriters; w++)
            {
                string writer = "single" + w;
                for (int i = 0; i < Singles; i++)
                {
                    expected.Add($"{writer}-{i:D4}");
                }

                tasks.Add(Task.Run(() =>
                {
                    start.Wait();
                    var acks = new List<Ack>();
                    for (int i = 0; i < Singles; i++)
                    {
                        var r = Support.Cli.Run("publish", "--store", store, "--type", "test.single", "--source", writer,
                            "--correlation-id", "c-" + i, "--data", $"{{\"marker\":\"{writer}-{i:D4}\"}}", "--lock-timeout", "60");
                        Assert.True(r.ExitCode == 0, $"{writer} exited {r.ExitCode}: {r.StdErr}");
                        Assert.Single(r.Lines);
                        acks.Add(CliProcess.ParseAck(r.Lines[0]));
                    }

                    lock (allAcks)
                    {
                        allAcks.Add((writer, acks));
                    }
                }));
            }

            start.Set();
            await Task.WhenAll(tasks);

            // Every printed acknowledgement is a distinct event, and they are exactly the ones sent.
            var acked = allAcks.SelectMany(a => a.Acks).ToList();
            Assert.Equal(expected.Count, acked.Count);
            Assert.Equal(expected.OrderBy(m => m), acked.Select(a => a.Marker).OrderBy(m => m));
            Assert.Equal(acked.Count, acked.Select(a => a.Seq).Distinct().Count());

            // One writer's events keep its order.
            foreach (var (writer, acks) in allAcks)
            {
                Assert.Equal(acks.Select(a => a.Marker).OrderBy(m => m, StringComparer.Ordinal), acks.Select(a => a.Marker));
                Assert.True(acks.Zip(acks.Skip(1)).All(p => p.First.Seq < p.Second.Seq), writer + "'s seqs go backwards");
            }

            // On disk: seqs 1..N, no torn or damaged line, and each record is byte for byte what was acknowledged.
            var records = StoreInspector.AssertClean(store);
            Assert.Equal(expected.Count, records.Count);
            var ackBySeq = acked.ToDictionary(a => a.Seq);
            foreach (var r in records)
            {
                Assert.Equal(ackBySeq[r.Seq].Line, r.EventJson);
            }

            // bmadguard get prints the same lines, each one a JSON object, in seq order, timestamps non-decreasing.
            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal(0, get.ExitCode);
            Assert.Equal("", get.StdErr);
            Assert.Equal(records.Select(r => r.EventJson), get.Lines);
            DateTimeOffset previous = DateTimeOffset.MinValue;
            foreach (string line in get.Lines)
            {
                using var doc = System.Text.Json.JsonDocument.Parse(line);
                var ts = DateTimeOffset.Parse(doc.RootElement.GetProperty("timestamp").GetString()!);
                Assert.True(ts >= previous, "timestamps go backwards");
                previous = ts;
            }

            _output.WriteLine($"{acked.Count} events from {BatchWriters + SingleWriters} concurrent writers in {StoreInspector.Scan(store).Segments} segments");
        }

        [Fact]
        public async Task Readers_and_a_follower_see_only_complete_events_while_writers_append_and_roll_over()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store, "--segment-max-bytes", "8192", "--max-event-bytes", "4096");
            const int Writers = 2, PerWriter = 400;

            using var follower = CliProcess.Start(false, "get", "--store", store, "--follow", "--consumer", "live");
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
            {
                using var p = CliProcess.Start(true, "publish", "--store", store, "--stdin", "--lock-timeout", "60");
                for (int i = 0; i < PerWriter; i++)
                {
                    p.StdIn.Write($"{{\"type\":\"live.t\",\"data\":{{\"marker\":\"w{w}-{i:D4}\",\"pad\":\"{new string('r', (i * 71) % 1500)}\"}}}}\n");
                    if (i % 5 == 0)
                    {
                        p.StdIn.Flush();
                        Thread.Sleep(1);
                    }
                }

                p.StdIn.Close();
                Assert.Equal(0, p.Wait());
            })).ToArray();

            // Meanwhile, full reads in this process: never an error, always 1..n contiguous, each one at least as long as the last.
            int reads = 0, lastCount = 0, verifies = 0, inFlight = 0;
            using (var reader = Core.Storage.FileEventStore.Open(store))
            {
                while (!writers.All(t => t.IsCompleted))
                {
                    var seqs = reader.Read(new Core.Storage.EventQuery()).Select(r => r.Seq).ToList();
                    StoreInspector.AssertContiguous(seqs);
                    Assert.True(seqs.Count >= lastCount, "a read went backwards");
                    lastCount = seqs.Count;
                    reads++;

                    // Test-BmadIntegrity on the live store: an append in flight is information, never damage or a torn tail.
                    var report = Core.Integrity.StoreVerifier.Verify(store, new Core.Integrity.StoreVerifyOptions { IncludeRegisteredChecks = false, ConfirmLockTimeout = TimeSpan.FromSeconds(30) });
                    var notInFlight = report.Findings.Where(f => f.Code != Core.Integrity.FindingCodes.AppendInFlight).ToList();
                    Assert.True(notInFlight.Count == 0, string.Join("\n", notInFlight.Select(f => $"{f.Code}: {f.Message}")));
                    inFlight += report.Findings.Count - notInFlight.Count;
                    verifies++;
                }
            }

            await Task.WhenAll(writers);
            var records = StoreInspector.AssertClean(store);
            Assert.Equal(Writers * PerWriter, records.Count);

            // The follower printed every event once, in order, across every rollover.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (follower.Lines().Count < records.Count && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(50);
            }

            follower.Kill();
            follower.Wait();
            Assert.Equal(records.Select(r => r.EventJson), follower.Lines());
            _output.WriteLine($"{reads} full reads and {verifies} verifies ({inFlight} saw an append in flight) during the writes; {StoreInspector.Scan(store).Segments} segments");
        }
    }
}

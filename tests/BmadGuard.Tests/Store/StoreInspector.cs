using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>One record as found on disk by <see cref="StoreInspector"/>.</summary>
    public sealed record RawRecord(long Seq, string Id, string Type, string Source, string EventJson, string DataJson, string Segment, long Offset)
    {
        /// <summary>The "marker" string in data, which the tests put in every event they publish.</summary>
        public string? Marker
        {
            get
            {
                using var doc = JsonDocument.Parse(DataJson, new JsonDocumentOptions { MaxDepth = 1100 });
                return doc.RootElement.TryGetProperty("marker", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            }
        }
    }

    /// <summary>What <see cref="StoreInspector.Scan"/> found.</summary>
    public sealed class RawScan
    {
        public List<RawRecord> Records { get; } = new List<RawRecord>();

        /// <summary>Damage that is not a torn tail (any of it fails a test).</summary>
        public List<string> Problems { get; } = new List<string>();

        /// <summary>Bytes after the last valid record of the last segment (a torn tail), 0 when clean.</summary>
        public long TornBytes { get; set; }

        public string? TornSegment { get; set; }

        public long TornOffset { get; set; }

        public int Segments { get; set; }
    }

    /// <summary>
    /// Reads a store's segment files with its own code (not the store's): headers, the CRC-32C trailer of
    /// every line, seq continuity within and across segments, event shape. The tests judge the store with
    /// this so that a bug in the store's reader cannot hide a bug in its writer.
    /// </summary>
    public static class StoreInspector
    {
        private static readonly byte[] Trailer = Encoding.ASCII.GetBytes(",\"crc\":\"");
        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        public static RawScan Scan(string storeRoot)
        {
            var scan = new RawScan();
            string dir = Path.Combine(storeRoot, "segments");
            var segments = Directory.GetFiles(dir, "segment-*.jsonl").OrderBy(p => p, StringComparer.Ordinal).ToList();
            scan.Segments = segments.Count;
            if (segments.Count == 0)
            {
                scan.Problems.Add("no segments");
                return scan;
            }

            long expect = 1;
            for (int s = 0; s < segments.Count; s++)
            {
                string path = segments[s];
                bool last = s == segments.Count - 1;
                byte[] bytes = File.ReadAllBytes(path);
                string name = Path.GetFileName(path);
                long nameSeq = long.Parse(name.Substring("segment-".Length, 20));
                if (nameSeq != expect)
                {
                    scan.Problems.Add($"{name}: named for seq {nameSeq}, expected {expect}");
                }

                var lines = SplitLines(bytes);
                if (lines.Count == 0 || !lines[0].Terminated || !CrcOk(bytes, lines[0]))
                {
                    scan.Problems.Add($"{name}: missing or damaged header");
                    continue;
                }

                using (var header = JsonDocument.Parse(EventBytes(bytes, lines[0])))
                {
                    var seg = header.RootElement.GetProperty("segment");
                    if (seg.GetProperty("format").GetString() != "bmadguard-segment/1" || seg.GetProperty("firstSeq").GetInt64() != nameSeq)
                    {
                        scan.Problems.Add($"{name}: header does not match its name");
                    }
                }

                for (int i = 1; i < lines.Count; i++)
                {
                    var line = lines[i];
                    RawRecord? record = line.Terminated && CrcOk(bytes, line) ? Decode(bytes, line, path) : null;
                    if (record == null)
                    {
                        bool restInvalid = lines.Skip(i + 1).All(l => !(l.Terminated && CrcOk(bytes, l)));
                        if (last && restInvalid)
                        {
                            scan.TornBytes = bytes.Length - line.Offset;
                            scan.TornSegment = path;
                            scan.TornOffset = line.Offset;
                        }
                        else
                        {
                            scan.Problems.Add($"{name}: bad record at byte {line.Offset}");
                        }

                        break;
                    }

                    if (record.Seq != expect)
                    {
                        scan.Problems.Add($"{name}: seq {record.Seq} at byte {line.Offset}, expected {expect}");
                        expect = record.Seq;
                    }

                    expect++;
                    scan.Records.Add(record);
                }
            }

            return scan;
        }

        /// <summary>The store is clean: no damage, no torn tail, seqs 1..N contiguous, ids unique. Returns the records.</summary>
        public static List<RawRecord> AssertClean(string storeRoot)
        {
            var scan = Scan(storeRoot);
            Assert.True(scan.Problems.Count == 0, "store damaged: " + string.Join("; ", scan.Problems));
            Assert.True(scan.TornBytes == 0, $"torn tail of {scan.TornBytes} bytes at {scan.TornOffset} of {scan.TornSegment}: "
                                             + (scan.TornSegment == null ? "" : Encoding.UTF8.GetString(File.ReadAllBytes(scan.TornSegment).AsSpan((int)scan.TornOffset, (int)Math.Min(scan.TornBytes, 400)))));
            AssertContiguous(scan.Records.Select(r => r.Seq));
            Assert.Equal(scan.Records.Count, scan.Records.Select(r => r.Id).Distinct().Count());
            return scan.Records;
        }

        public static void AssertContiguous(IEnumerable<long> seqs)
        {
            long expect = 1;
            foreach (long seq in seqs)
            {
                Assert.True(seq == expect, $"expected seq {expect}, found {seq}");
                expect++;
            }
        }

        /// <summary>bmadguard init, asserted to succeed.</summary>
        public static void Init(string store, params string[] extra)
        {
            var r = Support.Cli.Run(new[] { "init", "--store", store }.Concat(extra).ToArray());
            Assert.True(r.ExitCode == 0, $"init exited {r.ExitCode}: {r.StdErr}");
        }

        /// <summary>Every segment file's bytes, by file name (to prove a failed command wrote nothing).</summary>
        public static Dictionary<string, byte[]> SnapshotSegments(string storeRoot)
            => Directory.GetFiles(Path.Combine(storeRoot, "segments")).ToDictionary(p => Path.GetFileName(p), File.ReadAllBytes);

        public static void AssertUnchanged(Dictionary<string, byte[]> before, string storeRoot)
        {
            var after = SnapshotSegments(storeRoot);
            Assert.Equal(before.Keys.OrderBy(k => k), after.Keys.OrderBy(k => k));
            foreach (var kv in before)
            {
                Assert.True(kv.Value.AsSpan().SequenceEqual(after[kv.Key]), $"segment {kv.Key} changed");
            }
        }

        private readonly record struct Line(int Offset, int Length, bool Terminated);

        private static List<Line> SplitLines(byte[] bytes)
        {
            var lines = new List<Line>();
            int start = 0;
            while (start < bytes.Length)
            {
                int nl = Array.IndexOf(bytes, (byte)'\n', start);
                if (nl < 0)
                {
                    lines.Add(new Line(start, bytes.Length - start, false));
                    break;
                }

                lines.Add(new Line(start, nl - start, true));
                start = nl + 1;
            }

            return lines;
        }

        private static bool CrcOk(byte[] bytes, Line line)
        {
            if (line.Length < 20)
            {
                return false;
            }

            var span = bytes.AsSpan(line.Offset, line.Length);
            var trailer = span.Slice(span.Length - 18);
            if (!trailer.Slice(0, 8).SequenceEqual(Trailer) || trailer[16] != '"' || trailer[17] != '}')
            {
                return false;
            }

            string hex = Encoding.ASCII.GetString(trailer.Slice(8, 8));
            if (hex.Any(c => !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))))
            {
                return false;
            }

            return Crc32C.ComputeWithTable(span.Slice(0, span.Length - 18)) == Convert.ToUInt32(hex, 16);
        }

        private static byte[] EventBytes(byte[] bytes, Line line)
        {
            var result = new byte[line.Length - 17];
            Array.Copy(bytes, line.Offset, result, 0, line.Length - 18);
            result[^1] = (byte)'}';
            return result;
        }

        private static RawRecord? Decode(byte[] bytes, Line line, string path)
        {
            byte[] ev = EventBytes(bytes, line);
            try
            {
                string json = StrictUtf8.GetString(ev);
                using var doc = JsonDocument.Parse(ev, new JsonDocumentOptions { MaxDepth = 1100 });
                var r = doc.RootElement;
                var names = r.EnumerateObject().Select(p => p.Name).ToArray();
                if (!names.SequenceEqual(new[] { "seq", "id", "timestamp", "type", "source", "correlationId", "data" }))
                {
                    return null;
                }

                if (r.GetProperty("data").ValueKind != JsonValueKind.Object)
                {
                    return null;
                }

                DateTimeOffset.Parse(r.GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                return new RawRecord(r.GetProperty("seq").GetInt64(), r.GetProperty("id").GetString()!, r.GetProperty("type").GetString()!,
                    r.GetProperty("source").GetString()!, json, r.GetProperty("data").GetRawText(), path, line.Offset);
            }
            catch (Exception ex) when (ex is JsonException || ex is DecoderFallbackException || ex is FormatException || ex is InvalidOperationException || ex is KeyNotFoundException)
            {
                return null;
            }
        }
    }
}

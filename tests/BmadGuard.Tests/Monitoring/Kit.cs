using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Monitoring
{
    internal static class Kit
    {
        /// <summary>A store with <paramref name="events"/> events of type test.n, data {"n":1..N}, made by the real CLI.</summary>
        public static string NewStore(TempDir dir, int events, string name = "store")
        {
            string store = dir.Combine(name);
            var init = Support.Cli.Run("init", "--store", store);
            Assert.True(init.ExitCode == 0, init.StdErr);
            if (events > 100)
            {
                // Large stores are filled through Core: Support.Cli.Run writes all of stdin before reading stdout, so
                // a publish that acknowledges more than a pipe buffer of events would block both processes.
                using var s = BmadGuard.Core.Storage.FileEventStore.Open(store);
                for (int start = 1; start <= events; start += 5000)
                {
                    var batch = new List<BmadGuard.Core.Events.EventDraft>();
                    for (int i = start; i < start + 5000 && i <= events; i++)
                    {
                        batch.Add(BmadGuard.Core.Events.EventDraft.FromJson("test.n", "kit", null, "{\"n\":" + i + "}"));
                    }

                    s.Publish(batch);
                }
            }
            else if (events > 0)
            {
                Publish(store, 1, events);
            }

            return store;
        }

        /// <summary>Publishes test.n events {"n":from}..{"n":to} (with <paramref name="pad"/> x's in "pad" if &gt; 0) through `bmadguard publish --stdin`.</summary>
        public static void Publish(string store, int from, int to, string source = "kit", int pad = 0)
        {
            var sb = new StringBuilder();
            for (int i = from; i <= to; i++)
            {
                sb.Append("{\"type\":\"test.n\",\"source\":\"").Append(source).Append("\",\"data\":{\"n\":").Append(i);
                if (pad > 0)
                {
                    sb.Append(",\"pad\":\"").Append('x', pad).Append('"');
                }

                sb.Append("}}\n");
            }

            var pub = Support.Cli.RunWithStdin(sb.ToString(), "publish", "--store", store, "--stdin");
            Assert.True(pub.ExitCode == 0, pub.StdErr);
        }

        public static string Segment(string store) => Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(x => x).Last();

        /// <summary>Flips one bit of the byte at <paramref name="offset"/> (negative: from the end), in place (same length).</summary>
        public static void FlipByte(string path, long offset)
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            long at = offset < 0 ? fs.Length + offset : offset;
            fs.Position = at;
            int b = fs.ReadByte();
            fs.Position = at;
            fs.WriteByte((byte)(b ^ 0x01));
        }

        /// <summary>Cuts the last <paramref name="bytes"/> bytes of the newest segment: a crash mid-append.</summary>
        public static void TearLastRecord(string store, int bytes)
        {
            using var f = new FileStream(Segment(store), FileMode.Open, FileAccess.Write);
            f.SetLength(f.Length - bytes);
        }

        /// <summary>Offset of the first byte of line <paramref name="lineIndex"/> (0 = the segment header).</summary>
        public static long LineStart(string path, int lineIndex)
        {
            byte[] bytes = File.ReadAllBytes(path);
            int line = 0;
            for (int i = 0; i < bytes.Length; i++)
            {
                if (line == lineIndex)
                {
                    return i;
                }

                if (bytes[i] == (byte)'\n')
                {
                    line++;
                }
            }

            throw new ArgumentOutOfRangeException(nameof(lineIndex));
        }

        public static List<JsonElement> Audit(string store) => AuditLog.Read(store).ToList();

        public static List<JsonElement> Events(string store, string? type = null)
        {
            var args = new List<string> { "get", "--store", store };
            if (type != null)
            {
                args.Add("--type");
                args.Add(type);
            }

            var r = Support.Cli.Run(args.ToArray());
            Assert.True(r.ExitCode == 0, r.StdErr);
            return r.Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        }

        public static void WriteConfig(string store, string json) => File.WriteAllText(Path.Combine(store, MonitorConfig.FileName), json);

        /// <summary>Every file under the store read as text, for "no secret anywhere" assertions.</summary>
        public static string AllText(string store)
        {
            var sb = new StringBuilder();
            foreach (var f in Directory.GetFiles(store, "*", SearchOption.AllDirectories))
            {
                if (f.EndsWith(MonitorConfig.FileName, StringComparison.Ordinal))
                {
                    continue; // the configuration is where the operator put the secret
                }

                sb.Append(File.ReadAllText(f));
            }

            return sb.ToString();
        }
    }
}

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>
    /// The monitoring tests run one at a time: several start real monitor processes and check the issue's
    /// "within the interval plus one second" promise, which other monitors competing for 2 cores would blur.
    /// </summary>
    [CollectionDefinition(Name)]
    public sealed class MonitoringCollection
    {
        public const string Name = "Monitoring";
    }
}

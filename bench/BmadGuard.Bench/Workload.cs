using System;
using System.IO;
using System.Text;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Bench
{
    /// <summary>The event every scenario publishes, and the raw line of the same size the baselines write.</summary>
    internal static class Workload
    {
        public const int TargetRecordBytes = 300;

        public static EventDraft Draft(int pad)
        {
            string json = "{\"story\":\"S-1042\",\"status\":\"in-progress\",\"agent\":\"dev-1\",\"note\":\"" + new string('n', Math.Max(0, pad)) + "\"}";
            return EventDraft.FromJson("story.updated", "bench-agent", "corr-000042", Encoding.UTF8.GetBytes(json));
        }

        /// <summary>
        /// Finds the padding that makes one stored record (the whole line, checksum and newline included)
        /// about <see cref="TargetRecordBytes"/> bytes, by publishing to a scratch store and measuring the file.
        /// Returns the padding and the record's size.
        /// </summary>
        public static (int Pad, int RecordBytes) Calibrate(string scratchDir)
        {
            using var store = FileEventStore.Initialize(scratchDir, null, null, out _);
            int pad = 100;
            int size = 0;
            for (int attempt = 0; attempt < 3; attempt++)
            {
                long before = SegmentBytes(store);
                store.Publish(Draft(pad));
                size = (int)(SegmentBytes(store) - before);
                if (size == TargetRecordBytes)
                {
                    break;
                }

                pad += TargetRecordBytes - size;
            }

            return (pad, size);
        }

        private static long SegmentBytes(FileEventStore store)
        {
            long total = 0;
            foreach (string f in Directory.GetFiles(store.SegmentsDir))
            {
                total += new FileInfo(f).Length;
            }

            return total;
        }

        /// <summary><paramref name="count"/> lines of <paramref name="recordBytes"/> bytes each, newline-terminated.</summary>
        public static byte[] RawLines(int recordBytes, int count)
        {
            var bytes = new byte[recordBytes * count];
            for (int i = 0; i < count; i++)
            {
                int start = i * recordBytes;
                bytes.AsSpan(start, recordBytes).Fill((byte)'x');
                bytes[start] = (byte)'{';
                bytes[start + recordBytes - 2] = (byte)'}';
                bytes[start + recordBytes - 1] = (byte)'\n';
            }

            return bytes;
        }

        public static EventDraft[] Batch(EventDraft draft, int count)
        {
            var batch = new EventDraft[count];
            Array.Fill(batch, draft);
            return batch;
        }
    }

    /// <summary>The baseline: a plain file opened once, appended to with one write(2) and one fsync per call.</summary>
    internal sealed class RawLog : IDisposable
    {
        private readonly FileStream _stream;

        public RawLog(string path)
        {
            _stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Append,
                Access = FileAccess.Write,
                Share = FileShare.ReadWrite,
                BufferSize = 0, // one write(2) per Write, like the store's segment stream
            });
        }

        /// <summary>Appends the bytes and fsyncs; returns <paramref name="events"/> for the harness.</summary>
        public int AppendDurably(byte[] bytes, int events)
        {
            _stream.Write(bytes, 0, bytes.Length);
            _stream.Flush(true); // fsync: the baseline pays the same durability price as the store
            return events;
        }

        public void Dispose() => _stream.Dispose();
    }
}

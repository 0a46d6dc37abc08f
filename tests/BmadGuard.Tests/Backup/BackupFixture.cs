using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json;
using BmadGuard.Core.Events;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Storage;

namespace BmadGuard.Tests.Backup
{
    /// <summary>Helpers for the backup tests: small stores with many segments, events, directory snapshots.</summary>
    internal static class BackupFixture
    {
        /// <summary>A store whose segments roll over every ~4 KB, so a few hundred events make many sealed segments.</summary>
        public static FileEventStore NewStore(string root, long segmentMaxBytes = 4096)
            => FileEventStore.Initialize(root, new StoreSettings { SegmentMaxBytes = segmentMaxBytes, MaxEventBytes = 1024 }, null, out _);

        public static List<EventRecord> Publish(FileEventStore store, int count, string type = "test.event", int batch = 1)
        {
            var result = new List<EventRecord>();
            for (int i = 0; i < count; i += batch)
            {
                var drafts = Enumerable.Range(i, Math.Min(batch, count - i))
                    .Select(n => EventDraft.FromJson(type, "tester", null, "{\"n\":" + n + ",\"pad\":\"" + new string('x', 40) + "\"}"))
                    .ToList();
                result.AddRange(store.Publish(drafts));
            }

            return result;
        }

        /// <summary>The log's events without the bmadguard.rolledback placeholders a restore writes for the seqs it rolled back.</summary>
        public static List<EventRecord> ReadEvents(string storeRoot)
            => ReadAll(storeRoot).Where(e => e.Type != StoreRestore.RolledBackEventType).ToList();

        public static List<EventRecord> ReadAll(string storeRoot)
        {
            using var s = FileEventStore.Open(storeRoot);
            return s.Read(new EventQuery()).ToList();
        }

        /// <summary>Events of a backup, read by opening a copy of it as a store (a backup has a store's layout).</summary>
        public static List<EventRecord> ReadBackup(string backupDir, string scratch)
        {
            string copy = Path.Combine(scratch, "read-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(Path.Combine(copy, "segments"));
            File.Copy(Path.Combine(backupDir, StorePaths.MetaFileName), Path.Combine(copy, StorePaths.MetaFileName));
            foreach (var f in Directory.GetFiles(Path.Combine(backupDir, "segments")))
            {
                File.Copy(f, Path.Combine(copy, "segments", Path.GetFileName(f)));
            }

            return ReadAll(copy);
        }

        /// <summary>Every file (relative path → SHA-256) and directory under a path: equal snapshots mean nothing changed.</summary>
        public static SortedDictionary<string, string> Snapshot(string root)
        {
            var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (!Directory.Exists(root))
            {
                result["<absent>"] = "";
                return result;
            }

            foreach (var d in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories))
            {
                result[Path.GetRelativePath(root, d) + "/"] = "dir";
            }

            foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            {
                result[Path.GetRelativePath(root, f)] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));
            }

            return result;
        }

        public static long Inode(string path)
        {
            var psi = new ProcessStartInfo("stat", new[] { "-c", "%i", path }) { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            string s = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return long.Parse(s);
        }

        public static List<string> ReadIds(string ndjsonPath)
            => File.ReadAllLines(ndjsonPath).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToList();

        public static JsonElement Json(string line) => JsonDocument.Parse(line).RootElement.Clone();
    }
}

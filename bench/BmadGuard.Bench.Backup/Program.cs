using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

// Backup and restore figures, each as a ratio to a baseline measured in the same run on the same bytes.
//   dotnet run -c Release --project bench/BmadGuard.Bench.Backup -- [storeMB=1024] [restoreEvents=100000] [workDir]
// Files are in the page cache after they are written, so these are CPU + syscall + fsync costs, not cold-disk reads.
int storeMb = args.Length > 0 ? int.Parse(args[0]) : 1024;
int restoreEvents = args.Length > 1 ? int.Parse(args[1]) : 100_000;
string work = args.Length > 2 ? args[2] : Path.Combine(Path.GetTempPath(), "bmadguard-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(work);
try
{
    Incremental(Path.Combine(work, "large"), storeMb);
    DetectAndRestore(Path.Combine(work, "restore"), restoreEvents);
}
finally
{
    Directory.Delete(work, true);
}

static void Fill(FileEventStore s, int count, int padBytes)
{
    string pad = new string('x', padBytes);
    const int batch = 4096;
    for (int i = 0; i < count; i += batch)
    {
        var drafts = Enumerable.Range(i, Math.Min(batch, count - i))
            .Select(n => EventDraft.FromJson("bench.event", "bench", null, "{\"n\":" + n + ",\"pad\":\"" + pad + "\"}")).ToList();
        s.Publish(drafts);
    }
}

static double Seconds(Action a)
{
    var sw = Stopwatch.StartNew();
    a();
    return sw.Elapsed.TotalSeconds;
}

static void Incremental(string root, int storeMb)
{
    string store = Path.Combine(root, "store");
    int events = (int)((long)storeMb * 1024 * 1024 / 1100);
    using (var s = FileEventStore.Initialize(store, new StoreSettings { SegmentMaxBytes = 16L << 20 }, null, out _))
    {
        Fill(s, events, 960);
    }

    var segs = Directory.GetFiles(Path.Combine(store, "segments"));
    long bytes = segs.Sum(f => new FileInfo(f).Length);
    Console.WriteLine($"large store: {events} events, {bytes / 1048576.0:0} MiB in {segs.Length} segments");

    // Baselines: a plain durable copy of the segment files (cp + sync), and sha256 of the same bytes.
    string copyDir = Path.Combine(root, "plain-copy");
    Directory.CreateDirectory(copyDir);
    double tCopy = Seconds(() =>
    {
        foreach (var f in segs)
        {
            string t = Path.Combine(copyDir, Path.GetFileName(f));
            File.Copy(f, t);
            using var fs = new FileStream(t, FileMode.Open, FileAccess.ReadWrite);
            fs.Flush(true);
        }
    });
    Directory.Delete(copyDir, true);
    double tHash = Seconds(() =>
    {
        foreach (var f in segs)
        {
            using var fs = File.OpenRead(f);
            SHA256.HashData(fs);
        }
    });

    double tSha256sum = Seconds(() =>
    {
        var psi = new ProcessStartInfo("sha256sum") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var f in segs)
        {
            psi.ArgumentList.Add(f);
        }

        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
    });
    Console.WriteLine($"sha256sum of the segments: {tSha256sum:0.00} s ({bytes / tSha256sum / 1e9:0.00} GB/s)");

    BackupInfo? full = null, inc = null;
    double tFull = Seconds(() => full = StoreBackup.Create(store));
    using (var s = FileEventStore.Open(store))
    {
        Fill(s, 100, 960); // only the active segment changes
    }

    double tInc = Seconds(() => inc = StoreBackup.Create(store));
    double tNoReuse = Seconds(() => StoreBackup.Create(store, new BackupOptions { Incremental = false }));
    Console.WriteLine($"baseline durable copy (File.Copy+fsync): {tCopy:0.00} s ({bytes / tCopy / 1e9:0.00} GB/s); sha256 of same bytes: {tHash:0.00} s ({bytes / tHash / 1e9:0.00} GB/s)");
    Console.WriteLine($"full backup (copy + hash + read-back verify): {tFull:0.00} s = {tFull / tCopy:0.00}x plain copy; copied {full!.BytesCopied / 1048576.0:0} MiB");
    Console.WriteLine($"incremental backup, only active segment changed: {tInc:0.00} s = {tInc / tCopy:0.00}x plain copy, {tInc / tFull:0.00}x full backup, {tInc / tSha256sum:0.00}x sha256sum; " +
                      $"linked {inc!.FilesLinked} segments ({inc.BytesReused / 1048576.0:0} MiB), copied {inc.FilesCopied} files ({inc.BytesCopied / 1048576.0:0.0} MiB)");
    Console.WriteLine($"same backup with reuse off (Incremental=false): {tNoReuse:0.00} s = {tNoReuse / tCopy:0.00}x plain copy");
    Directory.Delete(root, true);
}

static void DetectAndRestore(string root, int count)
{
    string store = Path.Combine(root, "store");
    using (var s = FileEventStore.Initialize(store, new StoreSettings { SegmentMaxBytes = 4L << 20 }, null, out _))
    {
        Fill(s, count, 100);
    }

    StoreBackup.Create(store);
    using (var s = FileEventStore.Open(store))
    {
        Fill(s, 1000, 100); // newer than the backup: kept aside by the restore
    }

    var segs = SegmentNamesList(store);
    long bytes = segs.Sum(f => new FileInfo(f).Length);
    double tBaseline = Seconds(() =>
    {
        foreach (var f in segs)
        {
            using var fs = File.OpenRead(f);
            SHA256.HashData(fs);
        }
    });

    // Damage a record in the middle of the log.
    string victim = segs[segs.Count / 2];
    var b = File.ReadAllBytes(victim);
    b[b.Length / 2] ^= 0x08;
    File.WriteAllBytes(victim, b);

    string? detectedAt = null;
    double tDetect = Seconds(() =>
    {
        try
        {
            using var s = FileEventStore.Open(store);
            foreach (var _ in s.Read(new EventQuery())) { }
        }
        catch (BmadGuardException ex)
        {
            detectedAt = $"{ex.Code} at byte {ex.Offset} of {Path.GetFileName(ex.Path)}";
        }
    });
    RestoreReport? report = null;
    double tRestore = Seconds(() => report = StoreRestore.Restore(store, new RestoreRequest { Force = true, Latest = true }));
    Console.WriteLine($"restore store: {count + 1000} events, {bytes / 1048576.0:0.0} MiB in {segs.Count} segments; sha256 of its bytes: {tBaseline * 1000:0} ms");
    Console.WriteLine($"detect (full read until the damage): {tDetect * 1000:0} ms -> {detectedAt}");
    Console.WriteLine($"restore latest (verify backup, safety backup, keep aside, rebuild, swap, read back): {tRestore * 1000:0} ms = {tRestore / tBaseline:0.0}x sha256 of the store; " +
                      $"events {report!.EventsBefore} -> {report.EventsAfter}, kept aside {report.KeptAside}");
    Console.WriteLine($"detect + restore: {(tDetect + tRestore) * 1000:0} ms; restore phases ended at (ms): " + string.Join(", ", report.PhaseEndMilliseconds.Select(kv => $"{kv.Key} {kv.Value}")));
}

static List<string> SegmentNamesList(string store) => Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(f => f, StringComparer.Ordinal).ToList();

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>
    /// Get-BmadBackup and retention: finds a store's backups in <c>&lt;store&gt;/backups</c> and in the other
    /// destinations it has been backed up to (remembered in <c>&lt;store&gt;/backup-destinations.json</c>).
    /// </summary>
    public static class BackupCatalog
    {
        /// <summary>
        /// Oldest to newest by the log, never by the wall clock: a backup that ends at a higher seq is newer; at the same
        /// seq the higher writer epoch is newer (restore and repair raise it); only then the time it was made, and its name.
        /// A backup taken while the clock was set back is still the newest when it holds the most of the log.
        /// </summary>
        public static IComparer<BackupInfo> LogOrder { get; } = Comparer<BackupInfo>.Create((a, b) =>
        {
            int c = a.LastSeq.CompareTo(b.LastSeq);
            if (c == 0)
            {
                c = (a.WriterEpoch ?? -1).CompareTo(b.WriterEpoch ?? -1);
            }

            if (c == 0)
            {
                c = a.Created.CompareTo(b.Created);
            }

            return c != 0 ? c : StringComparer.Ordinal.Compare(a.Name, b.Name);
        });

        /// <summary>
        /// Lists a store's backups, newest first (<see cref="LogOrder"/>), so <c>Get-BmadBackup | Select-Object -First 1</c>
        /// is the newest. Quick checks the manifest's checksum and every file's
        /// presence and size (cheap); Deep also hashes every file and checks every record.
        /// </summary>
        public static IReadOnlyList<BackupInfo> List(string storeRoot, string? extraDestination = null, BackupCheck check = BackupCheck.Quick,
            IProgress<BackupProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            storeRoot = RequireStore(storeRoot);
            string storeId = BackupLayout.StoreId(storeRoot);
            var result = new List<BackupInfo>();
            foreach (string dir in EnumerateBackupDirectories(storeRoot, extraDestination))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var info = Describe(dir, check, progress, cancellationToken, out var manifest);
                if (manifest != null && manifest.StoreId != storeId)
                {
                    continue; // a shared destination: another store's backup
                }

                result.Add(info);
            }

            return result.OrderByDescending(b => b, LogOrder).ToList();
        }

        internal static string RequireStore(string storeRoot)
        {
            if (string.IsNullOrWhiteSpace(storeRoot))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "A store path is required.");
            }

            storeRoot = Path.GetFullPath(storeRoot);
            if (!StorePaths.IsStore(storeRoot))
            {
                throw new BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem,
                    Directory.Exists(storeRoot)
                        ? $"'{storeRoot}' is not a BmadGuard store (no {StorePaths.MetaFileName})."
                        : $"No BmadGuard store at '{storeRoot}'.", storeRoot);
            }

            return storeRoot;
        }

        internal static BackupInfo Describe(string dir, BackupCheck check, IProgress<BackupProgress>? progress, CancellationToken cancellationToken, out BackupManifest? manifest)
        {
            var v = BackupVerifier.Verify(dir, check, progress, cancellationToken);
            manifest = v.Manifest;
            return ToInfo(dir, v);
        }

        internal static BackupInfo ToInfo(string dir, BackupVerification v)
        {
            var manifest = v.Manifest;
            var check = v.Check;
            var firstError = v.Findings.FirstOrDefault(f => f.Severity == FindingSeverity.Error);
            BackupState state = firstError == null ? BackupState.Verified
                : firstError.Code == BackupFindingCodes.Incomplete ? BackupState.Unverified : BackupState.Damaged;
            long size = 0;
            try
            {
                size = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            }
            catch (IOException)
            {
            }

            DateTimeOffset created = manifest?.Created ?? ParseNameTime(v.Name) ?? Directory.GetCreationTimeUtc(dir);
            return new BackupInfo(manifest?.Name ?? v.Name, dir, manifest?.StorePath ?? "", manifest?.Kind ?? "", created,
                manifest?.ConsistentAt ?? created, manifest?.LastSeq ?? -1, manifest?.EventCount ?? 0, size, state,
                firstError == null ? null : firstError.Message + (firstError.Offset.HasValue ? $" (at byte {firstError.Offset} of '{firstError.File}')" : $" ('{firstError.File}')"),
                check, v.Findings, manifest?.WriterEpoch);
        }

        private static DateTimeOffset? ParseNameTime(string name)
        {
            string n = name.TrimStart('.');
            if (n.Length >= 19 && DateTime.TryParseExact(n.Substring(0, 19), "yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
            {
                return new DateTimeOffset(t, TimeSpan.Zero);
            }

            return null;
        }

        /// <summary>Backup directories (complete ones and leftover temporary ones) in every destination of the store.</summary>
        internal static IEnumerable<string> EnumerateBackupDirectories(string storeRoot, string? extraDestination)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (string dest in Destinations(storeRoot, extraDestination))
            {
                if (!Directory.Exists(dest))
                {
                    continue;
                }

                foreach (string dir in Directory.EnumerateDirectories(dest))
                {
                    string name = Path.GetFileName(dir);
                    bool complete = BackupLayout.IsBackupName(name);
                    bool temp = name.StartsWith(".", StringComparison.Ordinal) && name.EndsWith(BackupLayout.TempSuffix, StringComparison.Ordinal)
                                && BackupLayout.IsBackupName(name.Substring(1, name.Length - 1 - BackupLayout.TempSuffix.Length));
                    if ((complete || temp) && seen.Add(Path.GetFullPath(dir)))
                    {
                        yield return dir;
                    }
                }
            }
        }

        internal static List<string> Destinations(string storeRoot, string? extraDestination)
        {
            var list = new List<string> { BackupLayout.DefaultDestination(storeRoot) };
            string registry = Path.Combine(storeRoot, BackupLayout.DestinationsFileName);
            if (File.Exists(registry))
            {
                try
                {
                    using var doc = JsonDocument.Parse(File.ReadAllBytes(registry));
                    foreach (var d in doc.RootElement.GetProperty("destinations").EnumerateArray())
                    {
                        string? s = d.GetString();
                        if (!string.IsNullOrEmpty(s))
                        {
                            list.Add(s!);
                        }
                    }
                }
                catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException)
                {
                    // A damaged list of destinations hides only the other destinations' backups; the default is still listed.
                }
            }

            if (!string.IsNullOrEmpty(extraDestination))
            {
                list.Add(Path.GetFullPath(extraDestination!));
            }

            return list.Distinct(StringComparer.Ordinal).ToList();
        }

        /// <summary>Remembers a destination other than the default, so listing and restore find its backups.</summary>
        internal static void RememberDestination(string storeRoot, string destination, IStorageIO io)
        {
            var current = Destinations(storeRoot, null).Skip(1).ToList();
            if (current.Contains(destination, StringComparer.Ordinal))
            {
                return;
            }

            current.Add(destination);
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteStartArray("destinations");
                foreach (var d in current)
                {
                    w.WriteStringValue(d);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            buffer.WriteByte((byte)'\n');
            AtomicFile.Write(io, Path.Combine(storeRoot, BackupLayout.DestinationsFileName), buffer.ToArray());
        }

        // ------------------------------------------------------------------ retention

        /// <summary>
        /// Applies a retention policy to a store's backups (see <see cref="RetentionPolicy"/>): removes the
        /// verified backups no rule keeps, never the newest verified one, and never a damaged or incomplete
        /// one (those are reported as skipped for a person to look at).
        /// </summary>
        public static RetentionResult Forget(string storeRoot, RetentionPolicy policy, string? extraDestination = null, IStorageIO? io = null,
            CancellationToken cancellationToken = default, string? justMade = null)
        {
            ValidatePolicy(policy);
            var all = List(storeRoot, extraDestination, BackupCheck.Quick, null, cancellationToken);
            var (keep, remove, skipped) = Plan(all, policy, justMade);
            var removed = new List<string>();
            foreach (var b in remove)
            {
                cancellationToken.ThrowIfCancellationRequested();
                RemoveBackup(b.Path, io ?? OsStorageIO.Instance);
                removed.Add(b.Name);
            }

            return new RetentionResult(keep.Select(b => b.Name).ToList(), removed, skipped.Select(b => b.Name).ToList());
        }

        internal static void ValidatePolicy(RetentionPolicy policy)
        {
            foreach (var (n, flag) in new[] { (policy.KeepLast, "keep-last"), (policy.KeepHourly, "keep-hourly"), (policy.KeepDaily, "keep-daily"), (policy.KeepWeekly, "keep-weekly"), (policy.KeepSafety, "keep-safety") })
            {
                if (n.HasValue && n.Value < 0)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"--{flag} must be 0 or more (it was {n.Value}).");
                }
            }
        }

        /// <summary>
        /// The decision alone (no files touched): which backups each rule keeps. Regular backups follow the time and
        /// count rules; safety backups only <see cref="RetentionPolicy.KeepSafety"/>. Never removed: the newest verified
        /// regular backup, the newest safety backup, and <paramref name="justMade"/>.
        /// </summary>
        internal static (List<BackupInfo> Keep, List<BackupInfo> Remove, List<BackupInfo> Skipped) Plan(IReadOnlyList<BackupInfo> all, RetentionPolicy policy,
            string? justMade = null)
        {
            var newestFirst = all.Where(b => b.State == BackupState.Verified).OrderByDescending(b => b, LogOrder).ToList();
            var verified = newestFirst.Where(b => b.Kind != BackupKinds.Safety).ToList();
            var safety = newestFirst.Where(b => b.Kind == BackupKinds.Safety).ToList();
            var skipped = all.Where(b => b.State != BackupState.Verified).ToList();
            if (policy.IsEmpty)
            {
                return (newestFirst, new List<BackupInfo>(), skipped);
            }

            var keep = new HashSet<string>(StringComparer.Ordinal);
            if (justMade != null)
            {
                keep.Add(justMade); // the backup this run just made is never its own retention's victim
            }

            if (verified.Count > 0)
            {
                keep.Add(verified[0].Name); // the newest verified backup is never removed
            }

            if (policy.KeepLast == null && policy.KeepHourly == null && policy.KeepDaily == null && policy.KeepWeekly == null)
            {
                keep.UnionWith(verified.Select(b => b.Name)); // only --keep-safety given: regular backups are not its business
            }

            if (policy.KeepLast.HasValue)
            {
                foreach (var b in verified.Take(policy.KeepLast.Value))
                {
                    keep.Add(b.Name);
                }
            }

            KeepBuckets(verified, policy.KeepHourly, t => t.ToString("yyyy-MM-dd HH", CultureInfo.InvariantCulture), keep);
            KeepBuckets(verified, policy.KeepDaily, t => t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), keep);
            KeepBuckets(verified, policy.KeepWeekly, IsoWeek, keep);

            // Safety backups: all of them unless --keep-safety says how many; the newest one always (it undoes the last restore).
            foreach (var b in policy.KeepSafety.HasValue ? safety.Take(Math.Max(1, policy.KeepSafety.Value)) : safety)
            {
                keep.Add(b.Name);
            }

            return (newestFirst.Where(b => keep.Contains(b.Name)).ToList(), newestFirst.Where(b => !keep.Contains(b.Name)).ToList(), skipped);
        }

        private static void KeepBuckets(List<BackupInfo> newestFirst, int? count, Func<DateTime, string> bucketOf, HashSet<string> keep)
        {
            if (!count.HasValue || count.Value <= 0)
            {
                return;
            }

            var buckets = new HashSet<string>(StringComparer.Ordinal);
            foreach (var b in newestFirst)
            {
                string bucket = bucketOf(b.Created.UtcDateTime);
                if (buckets.Contains(bucket))
                {
                    continue; // a newer backup already represents this hour/day/week
                }

                if (buckets.Count >= count.Value)
                {
                    break;
                }

                buckets.Add(bucket);
                keep.Add(b.Name);
            }
        }

        private static string IsoWeek(DateTime t)
        {
#if NET8_0_OR_GREATER
            return ISOWeek.GetYear(t).ToString(CultureInfo.InvariantCulture) + "-W" + ISOWeek.GetWeekOfYear(t).ToString("D2", CultureInfo.InvariantCulture);
#else
            // ISO 8601: the week belongs to the year of its Thursday.
            int day = ((int)t.DayOfWeek + 6) % 7; // Monday = 0
            DateTime thursday = t.Date.AddDays(3 - day);
            int week = ((thursday.DayOfYear - 1) / 7) + 1;
            return thursday.Year.ToString(CultureInfo.InvariantCulture) + "-W" + week.ToString("D2", CultureInfo.InvariantCulture);
#endif
        }

        /// <summary>
        /// Removes one backup by policy: first renamed out of the listing (atomic, so a crash midway never
        /// leaves a half-deleted backup that looks complete), then deleted.
        /// </summary>
        private static void RemoveBackup(string dir, IStorageIO io)
        {
            string parent = Path.GetDirectoryName(dir)!;
            string doomed = Path.Combine(parent, "." + Path.GetFileName(dir) + ".removing");
            Directory.Move(dir, doomed);
            io.SyncDirectory(parent); // the backup leaves the listing durably before its files go
            Directory.Delete(doomed, recursive: true);
        }
    }
}

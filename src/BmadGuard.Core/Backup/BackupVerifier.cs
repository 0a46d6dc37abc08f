using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>The result of checking one backup against its manifest.</summary>
    public sealed class BackupVerification
    {
        internal BackupVerification(string name, string path, BackupCheck check, IReadOnlyList<BackupFinding> findings, long bytesChecked, long recordsChecked)
        {
            Name = name;
            Path = path;
            Check = check;
            Findings = findings;
            BytesChecked = bytesChecked;
            RecordsChecked = recordsChecked;
        }

        public string Name { get; }
        public string Path { get; }
        public BackupCheck Check { get; }
        public IReadOnlyList<BackupFinding> Findings { get; }
        public long BytesChecked { get; }
        public long RecordsChecked { get; }

        /// <summary>True when no finding is an error.</summary>
        public bool Healthy => Findings.All(f => f.Severity != FindingSeverity.Error);

        internal BackupManifest? Manifest { get; set; }
    }

    /// <summary>
    /// Checks backups against their manifests: the manifest's own checksum, every listed file present with
    /// its size and SHA-256, every segment record's CRC and seq, the segments' seqs running on from one file
    /// to the next, and the manifest's lastSeq and event count. Findings name the file and, where it can be
    /// known, the byte offset. Test-BmadIntegrity calls <see cref="VerifyAll"/> for a store's backups.
    /// </summary>
    public static class BackupVerifier
    {
        /// <summary>Verifies every backup of a store (in its default destination and the destinations it remembers), oldest first.</summary>
        public static IReadOnlyList<BackupVerification> VerifyAll(string storeRoot, BackupCheck check = BackupCheck.Deep,
            IProgress<BackupProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            storeRoot = Path.GetFullPath(storeRoot);
            var results = new List<BackupVerification>();
            foreach (var dir in BackupCatalog.EnumerateBackupDirectories(storeRoot, null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                results.Add(Verify(dir, check, progress, cancellationToken));
            }

            return results;
        }

        /// <summary>Verifies one backup directory.</summary>
        public static BackupVerification Verify(string backupDir, BackupCheck check = BackupCheck.Deep,
            IProgress<BackupProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            backupDir = Path.GetFullPath(backupDir);
            string name = Path.GetFileName(backupDir.TrimEnd(Path.DirectorySeparatorChar));
            if (name.StartsWith(".", StringComparison.Ordinal) && name.EndsWith(BackupLayout.TempSuffix, StringComparison.Ordinal))
            {
                var findings = new List<BackupFinding>();
                findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.Incomplete, name, backupDir, null,
                    "This is the temporary directory of a backup that did not finish (interrupted or failed); it was never verified. It is safe to delete."));
                return new BackupVerification(name, backupDir, check, findings, 0, 0);
            }

            return VerifyCore(backupDir, name, check, progress, cancellationToken);
        }

        /// <summary>Verifies a backup directory as the backup <paramref name="name"/> (a backup being made is checked under its temporary name).</summary>
        internal static BackupVerification VerifyCore(string backupDir, string name, BackupCheck check, IProgress<BackupProgress>? progress, CancellationToken cancellationToken,
            IReadOnlyDictionary<string, SegmentScan>? alreadyScanned = null)
        {
            var findings = new List<BackupFinding>();
            long bytesChecked = 0, records = 0;
            string manifestPath = Path.Combine(backupDir, BackupLayout.ManifestFileName);
            if (!File.Exists(manifestPath))
            {
                findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.ManifestMissing, name, manifestPath, null,
                    "The backup has no manifest.json, so none of its files can be checked. Do not restore from it."));
                return new BackupVerification(name, backupDir, check, findings, 0, 0);
            }

            byte[] manifestBytes = File.ReadAllBytes(manifestPath);
            bytesChecked += manifestBytes.Length;
            var manifest = BackupManifest.TryDecode(manifestBytes, out string? problem);
            if (manifest == null)
            {
                findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.ManifestDamaged, name, manifestPath, null,
                    $"The backup's manifest is damaged: {problem}. Its files cannot be trusted; restore from another backup."));
                return new BackupVerification(name, backupDir, check, findings, bytesChecked, 0);
            }

            if (manifest.Name != name)
            {
                findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.ManifestDamaged, name, manifestPath, null,
                    $"The manifest belongs to backup '{manifest.Name}', not to the directory '{name}' it is in: the backup was renamed or its manifest swapped."));
            }

            bool strict = manifest.Kind != BackupKinds.Safety;
            long total = manifest.Files.Sum(f => f.Size);
            long done = 0;
            var listed = new HashSet<string>(StringComparer.Ordinal) { BackupLayout.ManifestFileName };
            var segmentRanges = new List<(ManifestFile File, bool Ok)>();
            foreach (var file in manifest.Files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                listed.Add(file.Path);
                string full = BackupLayout.ToFullPath(backupDir, file.Path);
                progress?.Report(new BackupProgress("Verifying backup " + name, full, done, total));
                if (!File.Exists(full))
                {
                    findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.FileMissing, name, full, null,
                        $"'{file.Path}' is listed in the manifest but missing from the backup."));
                    segmentRanges.Add((file, false));
                    continue;
                }

                long size = new FileInfo(full).Length;
                if (size != file.Size)
                {
                    findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.FileSizeMismatch, name, full, Math.Min(size, file.Size),
                        $"'{file.Path}' is {size} bytes but the manifest says {file.Size} (it was {(size < file.Size ? "truncated" : "extended")} after the backup was made)."));
                    segmentRanges.Add((file, false));
                    continue;
                }

                if (check == BackupCheck.Quick)
                {
                    segmentRanges.Add((file, true));
                    done += size;
                    continue;
                }

                var scan = alreadyScanned != null && alreadyScanned.TryGetValue(file.Path, out var known)
                    ? known
                    : BackupFiles.Scan(full, file.IsSegment, null, cancellationToken);
                bytesChecked += scan.Size;
                records += scan.Records;
                done += size;
                bool ok = true;
                if (!string.Equals(scan.Sha256, file.Sha256, StringComparison.Ordinal))
                {
                    ok = false;
                    findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.FileHashMismatch, name, full, scan.BadOffset >= 0 ? scan.BadOffset : (long?)null,
                        $"'{file.Path}' does not match its SHA-256 in the manifest (bytes changed after the backup was made)" +
                        (scan.BadOffset >= 0 ? $"; the first damaged line starts at byte {scan.BadOffset} ({scan.BadReason})." : ".")));
                }
                else if (file.IsSegment && !scan.RecordsOk)
                {
                    // A safety backup copies the store as it is, damage included: its damaged lines are a
                    // faithful copy (a warning), not damage to the backup.
                    ok = false;
                    findings.Add(new BackupFinding(strict ? FindingSeverity.Error : FindingSeverity.Warning, BackupFindingCodes.RecordDamaged, name, full, scan.BadOffset,
                        $"'{file.Path}' matches its manifest hash but holds a damaged line at byte {scan.BadOffset}: {scan.BadReason} (the store was already damaged when it was backed up)."));
                }
                else if (strict && file.IsSegment && (scan.FirstSeq != file.FirstSeq || scan.LastSeq != file.LastSeq))
                {
                    ok = false;
                    findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.SeqMismatch, name, full, null,
                        $"'{file.Path}' holds seqs {scan.FirstSeq}..{scan.LastSeq} but the manifest says {file.FirstSeq}..{file.LastSeq}."));
                }

                segmentRanges.Add((file, ok));
            }

            // The segments must make one log: from the manifest's firstSeq, without gaps, to its lastSeq.
            var segments = segmentRanges.Where(s => s.File.IsSegment).OrderBy(s => s.File.FirstSeq).ToList();
            if (segments.Count > 0 && segments.All(s => s.Ok) && strict)
            {
                long expect = manifest.FirstSeq;
                foreach (var (f, _) in segments)
                {
                    if (f.FirstSeq != expect)
                    {
                        findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.SeqMismatch, name, BackupLayout.ToFullPath(backupDir, f.Path), 0,
                            $"'{f.Path}' starts at seq {f.FirstSeq} but seq {expect} was expected: a segment is missing from the backup."));
                        break;
                    }

                    expect = (f.LastSeq ?? f.FirstSeq!.Value - 1) + 1;
                }

                if (expect - 1 != manifest.LastSeq || manifest.EventCount != manifest.LastSeq - manifest.FirstSeq + 1)
                {
                    findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.SeqMismatch, name, manifestPath, null,
                        $"The segments end at seq {expect - 1}, but the manifest says lastSeq {manifest.LastSeq} with {manifest.EventCount} events."));
                }
            }
            else if (segments.Count == 0 && strict)
            {
                findings.Add(new BackupFinding(FindingSeverity.Error, BackupFindingCodes.FileMissing, name, manifestPath, null, "The manifest lists no segments."));
            }

            // Files nobody listed: not damage to the backup's data, but someone put them there.
            foreach (string f in Directory.EnumerateFiles(backupDir, "*", SearchOption.AllDirectories))
            {
                string rel = f.Substring(backupDir.Length + 1).Replace(Path.DirectorySeparatorChar, '/');
                if (!listed.Contains(rel))
                {
                    findings.Add(new BackupFinding(FindingSeverity.Warning, BackupFindingCodes.UnexpectedFile, name, f, null,
                        $"'{rel}' is in the backup directory but not in its manifest (renamed or added after the backup was made); it is ignored by restore."));
                }
            }

            progress?.Report(new BackupProgress("Verifying backup " + name, null, total, total));
            return new BackupVerification(name, backupDir, check, findings, bytesChecked, records) { Manifest = manifest };
        }
    }
}

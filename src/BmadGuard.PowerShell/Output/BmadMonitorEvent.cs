using System;
using System.Linq;
using BmadGuard.Core.Monitoring;

namespace BmadGuard
{
    /// <summary>
    /// One thing the monitor saw or did, as Start-BmadMonitor writes it: Event is Checked, DamageDetected, Repaired,
    /// Restored, RepairFailed or RestoreFailed (an attempt that did not leave a verified store), AlertSent, AlertFailed, BackupTaken, BackupDamaged, BackupDamageCleared or OutboxReplayed; the other properties are filled where they apply.
    /// </summary>
    public sealed class BmadMonitorEvent
    {
        internal BmadMonitorEvent(MonitorEvent e, Func<string?, string> redact)
        {
            Event = e.Event;
            Time = e.Time;
            Target = e.Target;
            Message = redact(e.Message);
            Findings = Array.Empty<string>();
            Quarantined = Array.Empty<string>();
            switch (e)
            {
                case Checked c:
                    Ok = c.Ok;
                    Deep = c.Deep;
                    Duration = c.Duration;
                    break;
                case DamageDetected d:
                    Ok = false;
                    Deep = d.Deep;
                    Policy = d.Policy.ToString();
                    Findings = d.Findings.Select(f => redact(f.Message)).ToArray();
                    break;
                case HealEvent h:
                    Outcome = h.Outcome.ToString();
                    Ok = h.Verified;
                    if (!h.Verified)
                    {
                        // An attempt that did not leave a verified store is not "Restored"/"Repaired": say what happened.
                        Event = h is Restored ? "RestoreFailed" : "RepairFailed";
                    }

                    Duration = h.Duration;
                    RecoveryTime = h.RecoveryTime;
                    Quarantined = h.Quarantined.ToArray();
                    Backup = h.RestoredFrom;
                    break;
                case AlertSent a:
                    Ok = true;
                    Channel = redact(a.Channel);
                    Severity = a.Severity.ToString();
                    break;
                case AlertFailed f:
                    Ok = false;
                    Channel = redact(f.Channel);
                    Severity = f.Severity.ToString();
                    break;
                case BackupTaken b:
                    Ok = b.Success;
                    Backup = b.Backup;
                    Duration = b.Duration;
                    break;
                case BackupDamaged bd:
                    Ok = false;
                    Backup = bd.Backup;
                    Findings = bd.Findings.Select(f => redact(f.Message)).ToArray();
                    break;
                case BackupDamageCleared bc:
                    Ok = true;
                    Backup = bc.Backup;
                    break;
                case OutboxReplayed o:
                    Ok = o.Pending == 0;
                    break;
            }
        }

        /// <summary>Checked, DamageDetected, Repaired, Restored, AlertSent, AlertFailed, BackupTaken, BackupDamaged, BackupDamageCleared or OutboxReplayed.</summary>
        public string Event { get; }

        /// <summary>When it happened.</summary>
        public DateTimeOffset Time { get; }

        /// <summary>The store or guarded file concerned.</summary>
        public string Target { get; }

        /// <summary>What happened, for a person (secrets redacted).</summary>
        public string Message { get; }

        /// <summary>Checked: clean. Repaired/Restored: verified afterwards. AlertSent/AlertFailed: delivered. BackupTaken: succeeded. BackupDamaged: false; BackupDamageCleared: true.</summary>
        public bool? Ok { get; }

        /// <summary>Checked/DamageDetected: a deep verify rather than a quick check.</summary>
        public bool? Deep { get; }

        /// <summary>DamageDetected: the policy acting on it (Alert, Repair, Restore).</summary>
        public string? Policy { get; }

        /// <summary>DamageDetected/BackupDamaged: what was found, one line each (a backup finding names the file and byte offset).</summary>
        public string[] Findings { get; }

        /// <summary>Repaired/Restored: Healed, NotNeeded, NotPossible, NotAvailable or Failed.</summary>
        public string? Outcome { get; }

        /// <summary>Repaired/Restored: files whose damaged bytes went to quarantine.</summary>
        public string[] Quarantined { get; }

        /// <summary>AlertSent/AlertFailed: the channel (URLs shown without their secret part).</summary>
        public string? Channel { get; }

        /// <summary>AlertSent/AlertFailed: Info, Warning, Error or Critical.</summary>
        public string? Severity { get; }

        /// <summary>BackupTaken: the backup's name; Restored: the backup restored from; BackupDamaged/BackupDamageCleared: the backup concerned.</summary>
        public string? Backup { get; }

        /// <summary>How long the check, heal or backup took.</summary>
        public TimeSpan? Duration { get; }

        /// <summary>Repaired/Restored: from detection to verified healthy.</summary>
        public TimeSpan? RecoveryTime { get; }
    }
}

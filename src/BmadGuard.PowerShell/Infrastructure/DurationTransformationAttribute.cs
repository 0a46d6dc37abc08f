using System;
using System.Globalization;
using System.Management.Automation;
using BmadGuard.Core.Monitoring;

namespace BmadGuard
{
    /// <summary>
    /// One duration type for every duration parameter: <c>'500ms'</c>, <c>'5s'</c>, <c>'2m'</c>, <c>'1h'</c>,
    /// <c>'1d'</c> (Core's <see cref="Durations"/>, as the configuration file and the CLI read them), a number of
    /// seconds, a TimeSpan, or TimeSpan text (<c>'00:00:05'</c>). Use it as <c>[BmadGuard.DurationTransformation()]</c>
    /// on a <c>[TimeSpan]</c> parameter (or with <c>Seconds = $true</c> on a <c>[double]</c> seconds parameter).
    /// <para>
    /// PowerShell reads some bare words as numbers with a type suffix before any parameter sees them: <c>5s</c> is
    /// the Int16 5 and <c>1d</c> the decimal 1. So an Int16 is taken as seconds (as every number is) and a decimal
    /// as days: <c>-Interval 5s</c> and <c>-BackupInterval 1d</c> mean what they say.
    /// </para>
    /// </summary>
    [AttributeUsage(AttributeTargets.Field | AttributeTargets.Property)]
    public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
    {
        /// <summary>Transform to a number of seconds (double) instead of a TimeSpan.</summary>
        public bool Seconds { get; set; }

        public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
        {
            object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
            if (value == null)
            {
                return inputData;
            }

            TimeSpan span = ToTimeSpan(value);
            return Seconds ? span.TotalSeconds : (object)span;
        }

        internal static TimeSpan ToTimeSpan(object value)
        {
            switch (value)
            {
                case TimeSpan t:
                    return t;
                case decimal days: // the bare word 1d is PowerShell's decimal literal 1
                    return TimeSpan.FromDays((double)days);
                case sbyte _:
                case byte _:
                case short _: // the bare word 5s is PowerShell's Int16 literal 5
                case ushort _:
                case int _:
                case uint _:
                case long _:
                case ulong _:
                case float _:
                case double _:
                    double seconds = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                    if (double.IsNaN(seconds) || seconds < 0 || seconds > TimeSpan.FromDays(3650).TotalSeconds)
                    {
                        throw Bad(value);
                    }

                    return TimeSpan.FromSeconds(seconds);
                case string text:
                    if (Durations.TryParse(text, out var parsed))
                    {
                        return parsed;
                    }

                    if (text.Contains(":") && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var clock))
                    {
                        return clock;
                    }

                    throw Bad(value);
                default:
                    throw Bad(value);
            }
        }

        private static ArgumentTransformationMetadataException Bad(object value)
            => new ArgumentTransformationMetadataException(
                $"'{value}' is not a duration: write e.g. 500ms, 5s, 2m, 1h or 1d, a number of seconds, or a TimeSpan.");
    }
}

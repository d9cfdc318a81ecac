using System.Globalization;

namespace Midge;

/// <summary>
/// The strftime conversions Mosquitto's tools understand, shared by <c>log_timestamp_format</c> ('%' escapes)
/// and <c>midge sub -F</c> ('@' escapes).
/// </summary>
internal static class TimeFormat
{
    /// <summary>The text of conversion <paramref name="c"/> at <paramref name="t"/>, or null if unknown.</summary>
    public static string? Conversion(char c, DateTimeOffset t) => c switch
    {
        'Y' => t.ToString("yyyy", CultureInfo.InvariantCulture),
        'y' => t.ToString("yy", CultureInfo.InvariantCulture),
        'm' => t.ToString("MM", CultureInfo.InvariantCulture),
        'd' => t.ToString("dd", CultureInfo.InvariantCulture),
        'e' => t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
        'H' => t.ToString("HH", CultureInfo.InvariantCulture),
        'I' => t.ToString("hh", CultureInfo.InvariantCulture),
        'M' => t.ToString("mm", CultureInfo.InvariantCulture),
        'S' => t.ToString("ss", CultureInfo.InvariantCulture),
        'p' => t.Hour < 12 ? "AM" : "PM",
        'j' => t.DayOfYear.ToString("D3", CultureInfo.InvariantCulture),
        'a' => t.ToString("ddd", CultureInfo.InvariantCulture),
        'A' => t.ToString("dddd", CultureInfo.InvariantCulture),
        'b' or 'h' => t.ToString("MMM", CultureInfo.InvariantCulture),
        'B' => t.ToString("MMMM", CultureInfo.InvariantCulture),
        'F' => t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        'T' => t.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
        'R' => t.ToString("HH:mm", CultureInfo.InvariantCulture),
        'D' => t.ToString("MM/dd/yy", CultureInfo.InvariantCulture),
        's' => t.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
        'u' => (t.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
        'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
        'z' => Offset(t, colon: false),
        'Z' => t.Offset == TimeSpan.Zero ? "UTC" : Offset(t, colon: false),
        'n' => "\n",
        't' => "\t",
        _ => null,
    };

    /// <summary>The UTC offset as +hhmm (or +hh:mm).</summary>
    public static string Offset(DateTimeOffset t, bool colon)
    {
        var o = t.Offset;
        string sign = o < TimeSpan.Zero ? "-" : "+";
        o = o.Duration();
        return colon ? $"{sign}{o.Hours:D2}:{o.Minutes:D2}" : $"{sign}{o.Hours:D2}{o.Minutes:D2}";
    }
}

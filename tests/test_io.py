import numpy as np
import pytest
import torch

from plugen import InputError
from plugen.io import read_label_columns, read_labels, read_latents, write_array


def test_latents_from_every_format(tmp_path):
    Z = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "z.npy", Z)
    torch.save(torch.as_tensor(Z), tmp_path / "z.pt")
    torch.save({"latents": torch.as_tensor(Z)}, tmp_path / "d.pt")
    write_array(tmp_path / "z.csv", Z)
    write_array(tmp_path / "h.csv", Z, header=["x", "y", "z"])
    for name in ("z.npy", "z.pt", "d.pt", "z.csv", "h.csv"):
        assert np.array_equal(read_latents(tmp_path / name), Z), name


def test_labels_csv_with_missing_cells(tmp_path):
    (tmp_path / "y.csv").write_text("smile,age\n1,30\n,NaN\n0,NA\n")
    header, Y = read_labels(tmp_path / "y.csv")
    assert header == ["smile", "age"]
    assert Y[0].tolist() == [1, 30] and np.isnan(Y[1]).all() and Y[2, 0] == 0 and np.isnan(Y[2, 1])


def test_round_trip_of_predictions_with_missing(tmp_path):
    Y = np.array([[1.0, np.nan], [0.0, 2.5]])
    write_array(tmp_path / "p.csv", Y, header=["a", "b"])
    assert (tmp_path / "p.csv").read_text() == "a,b\n1,\n0,2.5\n"
    header, back = read_labels(tmp_path / "p.csv")
    assert np.array_equal(back, Y, equal_nan=True)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("z.txt", "1,2", "unsupported latents file"),
        ("z.csv", "1,2\n3\n", "row 2 has 1 values, expected 2"),
        ("z.csv", "1,2\n3,x\n", "not a number: 'x'"),
        ("z.csv", "1,2\n3,\n", "missing value in row 2"),
        ("z.npy", "not numpy", "cannot read"),
        ("z.pt", "not torch", "cannot read"),
    ],
)
def test_bad_latent_files_are_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message):
        read_latents(tmp_path / name)


def test_missing_files_and_shapes(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_latents(tmp_path / "nope.npy")
    np.save(tmp_path / "v.npy", np.zeros(3))
    with pytest.raises(InputError, match="2-D"):
        read_latents(tmp_path / "v.npy")
    (tmp_path / "y.csv").write_text("1,0\n0,1\n")
    with pytest.raises(InputError, match="header"):
        read_labels(tmp_path / "y.csv")
    with pytest.raises(InputError, match="use .npy or .csv"):
        write_array(tmp_path / "out.json", np.zeros((1, 1)))


def test_label_columns_keep_numbers_and_class_names(tmp_path):
    from plugen.io import read_label_columns

    (tmp_path / "y.csv").write_text("smile,shape,group\n1,square,g1\n,NA,g2\n0, circle ,3\n")
    header, columns = read_label_columns(tmp_path / "y.csv")
    assert header == ["smile", "shape", "group"]
    assert columns["smile"].dtype == np.float64 and np.array_equal(columns["smile"], [1, np.nan, 0], equal_nan=True)
    assert columns["shape"].dtype == object and columns["shape"].tolist() == ["square", None, "circle"]
    assert columns["group"].tolist() == ["g1", "g2", "3"]  # one text cell: the whole column is text
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match="row 2 has 1 values, expected 2"):
        read_label_columns(tmp_path / "bad.csv")


def test_class_names_written_to_csv_and_refused_in_npy(tmp_path):
    from plugen.io import read_label_columns

    P = np.array([[1.0, "square"], [0.0, None], [np.nan, 'big, "round"']], dtype=object)
    write_array(tmp_path / "p.csv", P, header=["a", "shape"])
    assert (tmp_path / "p.csv").read_text() == 'a,shape\n1,square\n0,\n,"big, ""round"""\n'
    _, columns = read_label_columns(tmp_path / "p.csv")
    assert columns["shape"].tolist() == ["square", None, 'big, "round"']
    with pytest.raises(InputError, match=r"\.csv only"):
        write_array(tmp_path / "p.npy", P)
    assert not (tmp_path / "p.npy").exists()


def test_a_blank_line_in_a_one_column_labels_csv_is_a_missing_value(tmp_path):
    path = tmp_path / "y.csv"
    path.write_text("smile\n1\n\n0\n\n")
    header, Y = read_labels(path)
    assert header == ["smile"]
    np.testing.assert_array_equal(Y[:, 0], [1.0, np.nan, 0.0])
    header, columns = read_label_columns(path)
    np.testing.assert_array_equal(columns["smile"], [1.0, np.nan, 0.0])


def test_a_blank_line_inside_a_wider_labels_csv_is_named(tmp_path):
    path = tmp_path / "y.csv"
    path.write_text("smile,age\n1,30\n\n0,40\n")
    for read in (read_labels, read_label_columns):
        with pytest.raises(InputError, match="row 2 has 0 values"):
            read(path)
